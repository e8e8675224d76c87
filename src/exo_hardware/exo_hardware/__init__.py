"""Hardware layer of the hip exoskeleton: opensourceleg actuator drivers and live hip angles."""
