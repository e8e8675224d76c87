"""Parse and build K2MUSE file names, accepting every documented spelling variant.

The three acquisition programs spelled the same trial differently (``P01+Fatigue+LG+0+1+1.c3d``,
``LG_0/US_Ch1_S_1_Trial_1.txt``, ``Ideal-AS-5-1x5-2.mat``); everything here reduces them to one
:class:`TrialKey` so the modalities of a trial can be matched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

MODES = ("LG", "AS", "DS")
SPEEDS_M_S = (0.5, 1.0, 1.5)
BASE_CONDITIONS = ("Ideal", "Fatigue", "InterDay")
SHIFT_DIRECTIONS = ("Initial", "Upward", "Downward", "Leftward", "Rightward", "Depth")


class FileNameError(ValueError):
    """A file name that does not follow any known K2MUSE spelling."""


def normalise_participant(token: str) -> str:
    """``p1``, ``P01``, ``01`` -> ``P01``."""
    match = re.fullmatch(r"[Pp]?0*(\d{1,2})", token.strip())
    if not match or not 1 <= int(match.group(1)) <= 99:
        raise FileNameError(f"not a participant id: {token!r}")
    return f"P{int(match.group(1)):02d}"


def normalise_condition(token: str) -> str:
    """Map condition spellings (``Inter-day``, ``shift_initial``, ``Shift-Upward``) to one name."""
    compact = re.sub(r"[\s_\-]", "", token).lower()
    for name in BASE_CONDITIONS:
        if compact == name.lower():
            return name
    if compact.startswith("shift"):
        rest = compact[len("shift"):]
        for direction in SHIFT_DIRECTIONS:
            if rest == direction.lower():
                return "Shift" + direction
    raise FileNameError(f"unknown condition: {token!r}")


def normalise_mode(token: str) -> str:
    """``lg`` -> ``LG``."""
    mode = token.strip().upper()
    if mode not in MODES:
        raise FileNameError(f"unknown walking mode: {token!r}")
    return mode


def parse_speed(token: str) -> float:
    """Speed tokens ``0.5|0x5|05|S_0x5``, ``1|1x0|1.0``, ``1.5|1x5|15`` -> m/s."""
    text = re.sub(r"^[Ss]_?", "", token.strip()).lower().replace("x", ".")
    table = {"0.5": 0.5, "05": 0.5, ".5": 0.5, "1": 1.0, "1.0": 1.0, "10": 1.0,
             "1.5": 1.5, "15": 1.5}
    if text not in table:
        raise FileNameError(f"unknown speed token: {token!r}")
    return table[text]


def speed_token(speed_m_s: float) -> str:
    """Release spelling of a speed: ``0x5``, ``1``, ``1x5``."""
    for value, token in ((0.5, "0x5"), (1.0, "1"), (1.5, "1x5")):
        if abs(speed_m_s - value) < 1e-6:
            return token
    raise FileNameError(f"speed {speed_m_s} m/s is not one of {SPEEDS_M_S}")


def parse_angle(token: str) -> int:
    """Incline magnitude in degrees (unsigned, as the release writes it)."""
    if not re.fullmatch(r"\d{1,2}", token.strip()):
        raise FileNameError(f"not an incline angle: {token!r}")
    return int(token)


def parse_trial(token: str) -> int:
    """``1``, ``Trial_1``, ``trial1`` -> 1."""
    match = re.fullmatch(r"(?:[Tt]rial_?)?0*(\d{1,2})", token.strip())
    if not match:
        raise FileNameError(f"not a trial number: {token!r}")
    return int(match.group(1))


@dataclass(frozen=True, order=True)
class TrialKey:
    """Identity of one trial, shared by all its modalities."""

    participant: str
    condition: str
    mode: str
    angle_deg: int
    speed_m_s: float
    trial: int

    def __post_init__(self) -> None:
        if self.mode == "LG" and self.angle_deg != 0:
            raise FileNameError(f"level ground with incline {self.angle_deg}")
        if self.mode != "LG" and self.angle_deg == 0:
            raise FileNameError(f"mode {self.mode} with zero incline")

    @property
    def incline_deg(self) -> float:
        """Signed incline: ascent positive, descent negative."""
        return float(-self.angle_deg if self.mode == "DS" else self.angle_deg)

    @property
    def mode_key(self) -> str:
        """``LG_0``, ``AS_5``, ``DS_10``: the folder and model name of a mode."""
        return f"{self.mode}_{self.angle_deg}"

    @property
    def speed_key(self) -> str:
        """``S_0x5``, ``S_1``, ``S_1x5``."""
        return "S_" + speed_token(self.speed_m_s)

    @property
    def stem(self) -> str:
        """``P01_Ideal_LG_0_S_1_Trial_1``: file stem of the trial HDF5 file."""
        return (f"{self.participant}_{self.condition}_{self.mode}_{self.angle_deg}_"
                f"{self.speed_key}_Trial_{self.trial}")

    def vicon_relpath(self) -> Path:
        """Path of the c3d file relative to ``SourceData/Vicon``."""
        name = "+".join([self.participant, self.condition, self.mode, str(self.angle_deg),
                         speed_token(self.speed_m_s).replace("x", "."), str(self.trial)])
        return Path(self.participant, self.condition, name + ".c3d")

    def elonxi_relpath(self, channel: int) -> Path:
        """Path of one AUS channel file relative to ``SourceData/ELONXI``."""
        return Path(self.participant, self.condition, self.mode_key,
                    f"US_Ch{channel}_{self.speed_key}_Trial_{self.trial}.txt")

    def noraxon_relpath(self) -> Path:
        """Path of the sEMG file relative to ``SourceData/Noraxon``."""
        name = "-".join([self.condition, self.mode, str(self.angle_deg),
                         speed_token(self.speed_m_s), str(self.trial)])
        return Path(self.participant, name + ".mat")


def _context(path: Path) -> tuple[str | None, str | None]:
    """Participant and condition from the two folders above a file, when they parse."""
    participant = condition = None
    for part in reversed(path.parent.parts):
        if participant is None:
            try:
                participant = normalise_participant(part)
                continue
            except FileNameError:
                pass
        if condition is None:
            try:
                condition = normalise_condition(part)
            except FileNameError:
                pass
    return participant, condition


def parse_vicon_name(path: str | Path) -> TrialKey:
    """``P01+Fatigue+LG+0+1+1.c3d`` (also ``_``/``-`` separated) -> :class:`TrialKey`."""
    path = Path(path)
    parts = re.split(r"[+]", path.stem)
    if len(parts) != 6:
        stem = re.sub(r"(?i)trial[_\-\s]+", "Trial", path.stem)
        stem = re.sub(r"(?i)(?<=[_\-\s])S[_\-\s]+(?=\d)", "S", stem)
        parts = re.split(r"[+_\-\s]", stem)
    if len(parts) == 7 and parts[1].lower() in ("shift", "inter"):
        parts = [parts[0], parts[1] + parts[2], *parts[3:]]
    if len(parts) == 7 and re.fullmatch(r"\d", parts[4]) and re.fullmatch(r"\d", parts[5]):
        parts = [*parts[:4], parts[4] + "." + parts[5], parts[6]]
    if len(parts) != 6:
        raise FileNameError(f"{path.name}: expected <P>+<Condition>+<Mode>+<Angle>+<Speed>+<Trial>")
    try:
        return TrialKey(normalise_participant(parts[0]), normalise_condition(parts[1]),
                        normalise_mode(parts[2]), parse_angle(parts[3]), parse_speed(parts[4]),
                        parse_trial(parts[5]))
    except FileNameError as exc:
        raise FileNameError(f"{path.name}: {exc}") from None


_ELONXI = re.compile(
    r"US_(?:Ch|CH|ch)(?P<ch>[1-4])_(?:S_?)?(?P<speed>\d(?:[x.]\d)?)_(?:Trial_?)?(?P<trial>\d{1,2})",
    re.IGNORECASE)


def parse_elonxi_name(path: str | Path) -> tuple[TrialKey, int]:
    """``Pxx/<Cond>/LG_0/US_Ch1_S_1_Trial_1.txt`` -> (:class:`TrialKey`, channel 1..4)."""
    path = Path(path)
    match = _ELONXI.fullmatch(path.stem)
    mode_match = re.fullmatch(r"([A-Za-z]{2})[_\-]?(\d{1,2})", path.parent.name)
    participant, condition = _context(path.parent)
    if not match or not mode_match or participant is None or condition is None:
        raise FileNameError(f"{path}: expected Pxx/<Condition>/<Mode>_<Angle>/"
                         "US_Ch<n>_S_<speed>_Trial_<n>.txt")
    try:
        key = TrialKey(participant, condition, normalise_mode(mode_match.group(1)),
                       parse_angle(mode_match.group(2)), parse_speed(match["speed"]),
                       parse_trial(match["trial"]))
    except FileNameError as exc:
        raise FileNameError(f"{path.name}: {exc}") from None
    return key, int(match["ch"])


def parse_noraxon_name(path: str | Path) -> TrialKey:
    """``Pxx/Ideal-AS-5-1x5-2.mat`` (condition may itself contain '-') -> :class:`TrialKey`."""
    path = Path(path)
    participant, _ = _context(path)
    parts = path.stem.split("-")
    if participant is None or len(parts) < 5:
        raise FileNameError(f"{path}: expected Pxx/<Condition>-<Mode>-<Angle>-<Speed>-<Trial>.mat")
    try:
        return TrialKey(participant, normalise_condition("".join(parts[:-4])),
                        normalise_mode(parts[-4]), parse_angle(parts[-3]), parse_speed(parts[-2]),
                        parse_trial(parts[-1]))
    except FileNameError as exc:
        raise FileNameError(f"{path.name}: {exc}") from None


def parse_mode_key(mode_key: str) -> tuple[str, int]:
    """``AS_10`` -> (``AS``, 10)."""
    match = re.fullmatch(r"([A-Za-z]{2})_(\d{1,2})", mode_key)
    if not match:
        raise FileNameError(f"not a mode key: {mode_key!r}")
    return normalise_mode(match.group(1)), parse_angle(match.group(2))


# --- c3d point labels of model outputs -------------------------------------------------------

MODEL_OUTPUT_KINDS = {"angle": "Angles", "moment": "Moment", "power": "Power", "force": "Force"}
_MODEL_OUTPUT = re.compile(
    r"(?P<prefix>.*[^A-Za-z])?(?P<side>[LR])(?P<joint>Hip|Knee|Ankle)"
    r"(?P<kind>Angles?|Moments?|Powers?|Forces?)(?P<suffix>.*)", re.IGNORECASE)


@dataclass(frozen=True)
class ModelOutputLabel:
    """A c3d point label read as ``<prefix><L|R><Joint><Kind><suffix>``."""

    label: str
    column: int
    prefix: str
    side: int
    joint: str
    kind: str
    suffix: str

    @property
    def name(self) -> str:
        """Plug-in Gait name without prefix and suffix, e.g. ``LHipMoment``."""
        return f"{'LR'[self.side]}{self.joint.capitalize()}{MODEL_OUTPUT_KINDS[self.kind]}"


def parse_model_output_label(label: str, column: int = 0) -> ModelOutputLabel | None:
    """``A22:LHipAngles``, ``LHipAnglesV``, ``RHipMoment_CGM_2.4`` -> parts; None otherwise.

    Any prefix ending in a non-letter (subject ``A22:``, ``Sub1_``) and any suffix are accepted.
    """
    match = _MODEL_OUTPUT.fullmatch(label.strip())
    if match is None:
        return None
    kind = next(k for k, word in MODEL_OUTPUT_KINDS.items()
                if match["kind"].lower().startswith(word.lower().rstrip("s")))
    return ModelOutputLabel(label=label, column=column, prefix=match["prefix"] or "",
                            side="LR".index(match["side"].upper()),
                            joint=match["joint"].lower(), kind=kind, suffix=match["suffix"])


def label_preference(candidate: ModelOutputLabel, preferred_suffixes: tuple[str, ...] = (),
                     has_data: bool = True) -> tuple:
    """Sort key of candidate labels for one channel: the preference order.

    Labels with data first; then suffixes in ``preferred_suffixes`` order, then the plain label
    (no suffix), then other suffixes in POINT:LABELS order.
    """
    order = [s.lower() for s in preferred_suffixes]
    if "" not in order:
        order.append("")
    suffix = candidate.suffix.lower()
    rank = order.index(suffix) if suffix in order else len(order)
    return (not has_data, rank, candidate.column)
