"""Hip-exoskeleton assistance: force profile, admittance + PD control, actuator, replay."""
