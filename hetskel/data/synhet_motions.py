"""SynHet's body and motion library: a 30-joint kinematic puppet and the action classes that drive it.

Everything here happens in the *scene frame*, metres, right-handed: ``X`` is the left of a person
who faces the camera, ``Y`` points up from the floor (``Y = 0``), ``Z`` points towards the camera.
``hetskel.data.synhet`` places the camera and renders; this module only moves bodies.

A pose is a dict of named *channels* (``CHANNELS``), each an array ``(n, T)`` (angles in radians,
translations in metres), added on top of ``REST``. ``forward_kinematics`` turns a pose plus body
proportions ``(n, K)`` into joints ``(n, T, 30, 3)`` in the ``unified30`` order. All maths is
batched over samples and frames; the only Python loops run over joints and classes.

The classes are designed so that the paper's complementarity claim is checkable:

- *face* classes move only the head's orientation, about an axis through the ``head`` joint, so
  nose/eyes/ears (COCO) see them and the Kinect skeleton (``head`` stays put) does not;
- *hand* classes share one arm trajectory and differ only in finger curl and thumb, so hand tips
  and thumbs (Kinect) see them and COCO (wrist at most) does not;
- *body* and *two_person* classes move the whole skeleton.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hetskel.layouts import get_layout

U30 = get_layout("unified30")
J = {name: i for i, name in enumerate(U30.joints)}

CHANNELS = ("tx", "tz", "lift", "yaw", "bow", "lean", "twist", "head_yaw", "head_pitch", "head_roll",
            *(f"{s}_{c}" for s in "lr" for c in ("flex", "abd", "rot", "elbow", "wrist", "curl", "thumb",
                                                   "hip_flex", "hip_abd", "knee", "ankle")))
# A relaxed standing pose: arms slightly away from the body, elbows and fingers a little bent.
REST = {**{f"{s}_abd": 0.12 for s in "lr"}, **{f"{s}_elbow": 0.2 for s in "lr"},
        **{f"{s}_curl": 0.35 for s in "lr"}, **{f"{s}_hip_abd": 0.04 for s in "lr"},
        **{f"{s}_knee": 0.05 for s in "lr"}}

# Body proportions, metres for a 1.75 m person. Kinect's "head" is the centre of the skull; the face
# offsets (nose, eyes, ears) are relative to it in the head's own frame.
SEGMENTS = ("spine_low", "spine_up", "neck", "head", "shoulder_half", "hip_half", "upper_arm", "forearm",
            "hand", "finger", "thigh", "shin", "foot", "ankle_height", "face")
_SEG_M = np.array([0.26, 0.24, 0.07, 0.14, 0.18, 0.09, 0.29, 0.26, 0.07, 0.09, 0.44, 0.42, 0.14, 0.07, 1.0])
S = {name: i for i, name in enumerate(SEGMENTS)}
FACE_OFFSETS = {"nose": (0.0, -0.03, 0.10), "left_eye": (0.035, 0.01, 0.08), "right_eye": (-0.035, 0.01, 0.08),
                "left_ear": (0.075, -0.01, 0.0), "right_ear": (-0.075, -0.01, 0.0)}


def sample_bodies(rng: np.random.Generator, n: int) -> np.ndarray:
    """Per-subject proportions ``(n, K)``: height ~ N(1.70, 0.08) m plus per-subject limb ratios."""
    height = np.clip(rng.normal(1.70, 0.08, n), 1.50, 1.95)
    ratio = {k: np.clip(rng.normal(1.0, sd, n), 1 - 2.5 * sd, 1 + 2.5 * sd)
             for k, sd in (("arm", 0.04), ("leg", 0.04), ("shoulder", 0.06), ("hip", 0.06), ("torso", 0.04),
                           ("head", 0.04), ("hand", 0.06))}
    per_seg = {"spine_low": "torso", "spine_up": "torso", "neck": "torso", "head": "head", "face": "head",
               "shoulder_half": "shoulder", "hip_half": "hip", "upper_arm": "arm", "forearm": "arm",
               "hand": "hand", "finger": "hand", "thigh": "leg", "shin": "leg", "foot": "leg",
               "ankle_height": "leg"}
    body = _SEG_M[None, :] * (height / 1.75)[:, None]
    for seg, r in per_seg.items():
        body[:, S[seg]] *= ratio[r]
    body[:, S["face"]] = ratio["head"] * height / 1.75  # a scale, not a length
    return body


# ---------------------------------------------------------------------------------------------
# Rotations, batched: angle (...,) -> matrix (..., 3, 3)
def _rot(axis: str, a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    m = np.zeros((*np.shape(a), 3, 3))
    i, j = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[axis]
    k = 3 - i - j
    m[..., k, k] = 1.0
    m[..., i, i] = c
    m[..., j, j] = c
    m[..., i, j] = -s
    m[..., j, i] = s
    return m


def _apply(R: np.ndarray, v: np.ndarray) -> np.ndarray:
    """R (n, T, 3, 3) times v (n, 1 or T, 3) -> (n, T, 3)."""
    return np.einsum("ntij,ntj->nti", R, np.broadcast_to(v, R.shape[:-1]), optimize=False)


def _vec(body: np.ndarray, x=0.0, y=0.0, z=0.0) -> np.ndarray:
    """Per-sample constant vector (n, 1, 3); components may be (n,) arrays."""
    n = body.shape[0]
    return np.stack([np.broadcast_to(np.asarray(c, float), (n,)) for c in (x, y, z)], -1)[:, None, :]


def forward_kinematics(pose: dict, body: np.ndarray, x0=0.0, z0=0.0, yaw0=0.0) -> np.ndarray:
    """Joints ``(n, T, 30, 3)`` (unified30 order, scene frame) from channels ``(n, T)`` and body ``(n, K)``.

    ``x0, z0, yaw0`` (scalars or ``(n,)``) place the person; ``tx, tz`` walk in the person's own
    frame. The lowest foot point is put on the floor every frame, then ``lift`` raises the body
    (jumps), so squats and kicks need no explicit root height.
    """
    n, T = body.shape[0], next(iter(pose.values())).shape[-1]
    g = {c: pose.get(c, 0.0) + REST.get(c, 0.0) for c in CHANNELS}
    g = {c: np.broadcast_to(v, (n, T)) for c, v in g.items()}
    L = {k: body[:, i] for k, i in S.items()}
    out = np.zeros((n, T, U30.num_joints, 3))
    yaw = g["yaw"] + np.asarray(yaw0, float).reshape(-1, 1)
    R_pel = _rot("y", yaw)
    # the upper body bends at the pelvis; the lower spine takes half of the bend
    R_low = R_pel @ _rot("y", g["twist"] / 2) @ _rot("x", g["bow"] / 2) @ _rot("z", g["lean"] / 2)
    R_up = R_pel @ _rot("y", g["twist"]) @ _rot("x", g["bow"]) @ _rot("z", g["lean"])

    def put(name, v):
        out[:, :, J[name]] = v

    base = np.zeros((n, T, 3))
    put("spine_base", base)
    put("spine_mid", base + _apply(R_low, _vec(body, y=L["spine_low"])))
    put("spine_shoulder", out[:, :, J["spine_mid"]] + _apply(R_up, _vec(body, y=L["spine_up"])))
    put("neck", out[:, :, J["spine_shoulder"]] + _apply(R_up, _vec(body, y=L["neck"])))
    head = out[:, :, J["neck"]] + _apply(R_up, _vec(body, y=L["head"]))
    put("head", head)
    # the head turns about the head joint itself, so Kinect's single head point never sees it
    R_head = R_up @ _rot("y", g["head_yaw"]) @ _rot("x", g["head_pitch"]) @ _rot("z", g["head_roll"])
    for name, off in FACE_OFFSETS.items():
        put(name, head + _apply(R_head, _vec(body, *(o * L["face"] for o in off))))
    for side, sg in (("left", 1.0), ("right", -1.0)):  # the right side is the left mirrored in x
        s = side[0]
        sh = out[:, :, J["spine_shoulder"]] + _apply(R_up, _vec(body, sg * L["shoulder_half"], -0.03))
        put(f"{side}_shoulder", sh)
        R_ua = R_up @ _rot("z", sg * g[f"{s}_abd"]) @ _rot("x", -g[f"{s}_flex"]) @ _rot("y", sg * g[f"{s}_rot"])
        elbow = sh + _apply(R_ua, _vec(body, y=-L["upper_arm"]))
        R_fa = R_ua @ _rot("x", -g[f"{s}_elbow"])
        wrist = elbow + _apply(R_fa, _vec(body, y=-L["forearm"]))
        R_h = R_fa @ _rot("x", -g[f"{s}_wrist"])
        hand = wrist + _apply(R_h, _vec(body, y=-L["hand"]))
        # fingers curl towards the palm (which faces the body's midline at rest) and shorten
        curl = np.clip(g[f"{s}_curl"], 0.0, 1.0)
        R_f = R_h @ _rot("z", -sg * 1.9 * curl)
        tip_len = (1.0 - 0.55 * curl)[..., None]
        tip = hand + tip_len * _apply(R_f, _vec(body, y=-L["finger"]))
        # thumb: spread (open hand) -> tucked over the fingers (fist) -> extended along +z (thumbs up)
        th = np.clip(g[f"{s}_thumb"], 0.0, 1.0)[..., None]
        c = curl[..., None]
        v_open, v_fist, v_up = (np.array(v) for v in ((-0.01, -0.03, 0.05), (-0.035, -0.045, 0.02),
                                                       (0.0, 0.01, 0.075)))
        v = (1 - c) * v_open + c * ((1 - th) * v_fist + th * v_up)
        v = v * np.array([sg, 1.0, 1.0]) * (L["hand"] / 0.07)[:, None, None]
        thumb = hand + np.einsum("ntij,ntj->nti", R_h, v)
        for part, xyz in (("elbow", elbow), ("wrist", wrist), ("hand", hand), ("hand_tip", tip), ("thumb", thumb)):
            put(f"{side}_{part}", xyz)
        # leg
        hip = _apply(R_pel, _vec(body, sg * L["hip_half"], -0.04))
        R_th = R_pel @ _rot("z", sg * g[f"{s}_hip_abd"]) @ _rot("x", -g[f"{s}_hip_flex"])
        knee = hip + _apply(R_th, _vec(body, y=-L["thigh"]))
        R_sh = R_th @ _rot("x", g[f"{s}_knee"])
        ankle = knee + _apply(R_sh, _vec(body, y=-L["shin"]))
        foot = ankle + _apply(R_sh @ _rot("x", -g[f"{s}_ankle"]), _vec(body, 0, -L["ankle_height"], L["foot"]))
        for part, xyz in (("hip", hip), ("knee", knee), ("ankle", ankle), ("foot", foot)):
            put(f"{side}_{part}", xyz)
    # floor contact: the lowest foot point touches Y = 0, then the jump lift
    ah = L["ankle_height"][:, None]
    ground = np.minimum.reduce([out[:, :, J["left_foot"], 1], out[:, :, J["right_foot"], 1],
                                out[:, :, J["left_ankle"], 1] - ah, out[:, :, J["right_ankle"], 1] - ah])
    out[..., 1] += (g["lift"] - ground)[..., None]
    # walk in the person's own frame, then place the person in the scene
    R0 = _rot("y", np.broadcast_to(np.asarray(yaw0, float).reshape(-1, 1), (n, T)))
    out += _apply(R0, np.stack([g["tx"], np.zeros((n, T)), g["tz"]], -1))[:, :, None, :]
    out[..., 0] += np.asarray(x0, float).reshape(-1, 1, 1)
    out[..., 2] += np.asarray(z0, float).reshape(-1, 1, 1)
    return out


# ---------------------------------------------------------------------------------------------
# Motion building blocks. p is the action phase (n, T) in [0, 1]; amplitudes are drawn (n, 1).
def _ss(a: float, b: float, p: np.ndarray) -> np.ndarray:
    """Smoothstep from 0 (p <= a) to 1 (p >= b)."""
    t = np.clip((p - a) / (b - a), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _hold(p, a, b, c, d):
    """Rise over [a, b], hold, fall over [c, d]."""
    return _ss(a, b, p) * (1.0 - _ss(c, d, p))


def _u(rng, n, lo, hi):
    return rng.uniform(lo, hi, (n, 1))


def smooth_noise(rng: np.random.Generator, n: int, T: int, amp: float, waves: int = 3) -> np.ndarray:
    """Slow random wobble ``(n, T)``: a few sinusoids, 0.3-1.5 cycles per clip, random phase."""
    t = np.linspace(0.0, 1.0, T)
    f = rng.uniform(0.3, 1.5, (n, waves, 1))
    ph = rng.uniform(0, 2 * np.pi, (n, waves, 1))
    a = rng.normal(0.0, amp / np.sqrt(waves), (n, waves, 1))
    return (a * np.sin(2 * np.pi * f * t + ph)).sum(1)


def idle(rng: np.random.Generator, n: int, T: int) -> dict:
    """Class-independent standing sway, breathing and fidgeting, the same for every class."""
    spec = {"tx": 0.01, "tz": 0.01, "bow": 0.03, "lean": 0.025, "twist": 0.05, "head_yaw": 0.06,
            "head_pitch": 0.05, "head_roll": 0.03, "l_flex": 0.05, "r_flex": 0.05, "l_abd": 0.03,
            "r_abd": 0.03, "l_elbow": 0.08, "r_elbow": 0.08, "l_wrist": 0.1, "r_wrist": 0.1,
            "l_curl": 0.06, "r_curl": 0.06, "l_knee": 0.02, "r_knee": 0.02}
    return {c: smooth_noise(rng, n, T, a) for c, a in spec.items()}


def _gait(rng, p, n, amp=(0.3, 0.45)):
    """Walking: legs and arms swing in anti-phase; returns channels and the walked distance scale."""
    a = _u(rng, n, *amp)
    phi = 2 * np.pi * _u(rng, n, 1.5, 2.5) * p
    act = _hold(p, 0.0, 0.08, 0.92, 1.0)
    sw = np.sin(phi) * act
    return {"l_hip_flex": a * sw, "r_hip_flex": -a * sw,
            "l_knee": 1.1 * a * np.maximum(0, np.sin(phi + 0.8)) * act,
            "r_knee": 1.1 * a * np.maximum(0, np.sin(phi + 0.8 + np.pi)) * act,
            "l_flex": -0.6 * a * sw, "r_flex": 0.6 * a * sw, "bow": 0.05 * act}


def _head_turn(sign):
    def f(rng, p, n):
        return [{"head_yaw": sign * _u(rng, n, 0.7, 1.1) * _hold(p, 0.1, 0.35, 0.65, 0.9)}]
    return f


def _nod(rng, p, n):
    return [{"head_pitch": _u(rng, n, 0.35, 0.6) * np.sin(2 * np.pi * p) ** 2}]


def _hand_gesture(curl, thumb, wrist):
    """Raise the right forearm in front of the chest (same for all hand classes), then shape the hand.

    Only Kinect's hand, hand tip and thumb move with the shape (finger curl, thumb, wrist bend);
    COCO's wrist, elbow and shoulder follow the shared arm trajectory.
    """
    def f(rng, p, n):
        arm = _hold(p, 0.05, 0.25, 0.82, 0.97)
        shape = _hold(p, 0.28, 0.4, 0.75, 0.85)
        return [{"r_flex": _u(rng, n, 0.2, 0.5) * arm, "r_elbow": _u(rng, n, 1.3, 1.7) * arm,
                 "r_rot": _u(rng, n, -0.15, 0.15) * arm,
                 "r_curl": curl * shape, "r_thumb": thumb * shape, "r_wrist": wrist * shape}]
    return f


def _wave(rng, p, n):
    h = _hold(p, 0.05, 0.25, 0.8, 0.95)
    osc = np.sin(2 * np.pi * rng.integers(3, 6, (n, 1)) * p) * _hold(p, 0.2, 0.3, 0.75, 0.85)
    return [{"r_abd": _u(rng, n, 1.2, 1.6) * h, "r_rot": 1.5 * h, "r_elbow": 1.3 * h + 0.35 * osc}]


def _raise_arms(rng, p, n):
    h = _hold(p, 0.1, 0.4, 0.65, 0.9)
    a = _u(rng, n, 2.6, 3.0)
    return [{"l_flex": a * h, "r_flex": a * h, "l_elbow": -0.15 * h, "r_elbow": -0.15 * h}]


def _squat(rng, p, n):
    h = _hold(p, 0.1, 0.4, 0.6, 0.9)
    k = _u(rng, n, 1.5, 1.9) * h
    return [{"l_knee": k, "r_knee": k, "l_hip_flex": 0.95 * k, "r_hip_flex": 0.95 * k, "bow": 0.3 * k,
             "l_flex": 0.7 * k, "r_flex": 0.7 * k}]


def _jump(rng, p, n):
    crouch = _hold(p, 0.1, 0.3, 0.35, 0.42) + 0.7 * _hold(p, 0.6, 0.68, 0.75, 0.9)
    flight = np.clip(np.sin(np.pi * (p - 0.42) / 0.2), 0, None) * ((p > 0.42) & (p < 0.62))
    c = crouch * _u(rng, n, 0.9, 1.3)
    return [{"lift": _u(rng, n, 0.15, 0.35) * flight, "l_knee": c, "r_knee": c, "l_hip_flex": 0.8 * c,
             "r_hip_flex": 0.8 * c, "bow": 0.35 * c, "l_flex": 1.5 * flight - 0.4 * c,
             "r_flex": 1.5 * flight - 0.4 * c}]


def _kick(rng, p, n):
    k = _hold(p, 0.3, 0.45, 0.55, 0.75)
    chamber = _hold(p, 0.25, 0.38, 0.42, 0.5) + 0.8 * _hold(p, 0.55, 0.6, 0.65, 0.75)
    return [{"r_hip_flex": _u(rng, n, 1.0, 1.5) * k, "r_knee": 1.3 * chamber, "bow": -0.15 * k,
             "l_abd": 0.3 * k, "r_abd": 0.3 * k}]


def _walk(rng, p, n):
    ch = _gait(rng, p, n)
    d = _u(rng, n, 0.7, 1.1)
    ch["tz"] = d * _ss(0.0, 1.0, p) - 0.5 * d  # start behind the mark, end in front of it
    return [ch]


def _bow(rng, p, n):
    h = _hold(p, 0.1, 0.35, 0.6, 0.9)
    return [{"bow": _u(rng, n, 0.7, 1.1) * h, "head_pitch": 0.2 * h}]


def _punch(rng, p, n):
    guard = _hold(p, 0.02, 0.15, 0.88, 1.0)
    hit = np.exp(-0.5 * ((p - 0.38) / 0.05) ** 2) + np.exp(-0.5 * ((p - 0.65) / 0.05) ** 2)
    return [{"l_flex": 0.6 * guard, "r_flex": 0.6 * guard + _u(rng, n, 0.7, 1.0) * hit,
             "l_elbow": 1.8 * guard, "r_elbow": 1.8 * guard - 1.7 * hit, "twist": 0.25 * hit}]


def _pair(d):
    """Two people d metres apart, facing each other: A on the camera-facing person's right (-X)."""
    return {"x0": -d[:, 0] / 2, "yaw0": np.full(len(d), np.pi / 2)}, {"x0": d[:, 0] / 2,
                                                                      "yaw0": np.full(len(d), -np.pi / 2)}


def _handshake(rng, p, n):
    h = _hold(p, 0.1, 0.35, 0.8, 0.95)
    shake = 0.12 * np.sin(2 * np.pi * 3 * p) * _hold(p, 0.35, 0.45, 0.7, 0.8)
    a, b = _pair(_u(rng, n, 0.9, 1.1))
    for who in (a, b):
        who.update({"r_flex": 0.7 * h + shake, "r_elbow": 0.5 * h, "r_abd": -0.35 * h})
    return [a, b]


def _approach(rng, p, n):
    a, b = _pair(_u(rng, n, 2.0, 2.4))
    for who in (a, b):
        who.update(_gait(rng, p, n))
        who["tz"] = _u(rng, n, 0.5, 0.7) * _ss(0.0, 1.0, p)
    return [a, b]


def _push(rng, p, n):
    a, b = _pair(_u(rng, n, 0.75, 0.9))
    pre, push = _hold(p, 0.1, 0.3, 0.45, 0.5), _hold(p, 0.45, 0.55, 0.75, 0.9)
    for s in "lr":
        a.update({f"{s}_flex": 1.3 * (pre + push), f"{s}_elbow": 1.5 * pre + 0.1 * push})
    fall = _ss(0.5, 0.7, p)
    b.update({"tz": -_u(rng, n, 0.25, 0.45) * fall, "bow": -0.3 * _hold(p, 0.5, 0.6, 0.7, 0.85),
              "l_flex": 0.5 * fall, "r_flex": 0.5 * fall, "l_elbow": 0.6 * fall, "r_elbow": 0.6 * fall})
    return [a, b]


# name -> motion(rng, phase (n, T), n) -> [channels of person A, (person B)]
MOTIONS: dict[str, Callable] = {
    "turn_head_left": _head_turn(1.0), "turn_head_right": _head_turn(-1.0), "nod_head": _nod,
    # open hand: fingers straight, palm shown (wrist bent back); fist: fingers and wrist curled in;
    # thumbs up: fist with the thumb raised, wrist straight
    "open_hand": _hand_gesture(-0.35, 0.0, -0.6), "make_fist": _hand_gesture(0.65, 0.0, 0.35),
    "thumbs_up": _hand_gesture(0.65, 1.0, 0.0),
    "wave_right_hand": _wave, "raise_both_arms": _raise_arms, "squat": _squat, "jump": _jump,
    "kick_right": _kick, "walk_forward": _walk, "bow": _bow, "punch_right": _punch,
    "handshake": _handshake, "approach": _approach, "push": _push,
}
CLASS_GROUPS = {
    "face": ["turn_head_left", "turn_head_right", "nod_head"],
    "hand": ["open_hand", "make_fist", "thumbs_up"],
    "body": ["wave_right_hand", "raise_both_arms", "squat", "jump", "kick_right", "walk_forward", "bow",
             "punch_right"],
    "two_person": ["handshake", "approach", "push"],
}
