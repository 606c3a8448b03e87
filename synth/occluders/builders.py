"""Occluder geometry: pure functions of sampled parameters and the posed head.

Every builder takes ``(params, head)`` where ``head`` is a :class:`HeadState` (deformed skin
vertices, normals and triangles in the head frame, landmark positions, eye centres) and
returns a list of :class:`Piece` meshes in the head frame (cm). Placement is relative to
landmarks; rigid objects are pushed off the face until every vertex clears the skin
(:func:`push_clear`), and surface-following ones (masks, fringes, caps) are offsets of the
skin itself, so no occluder ever intersects the face.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.spatial import cKDTree

from aukit import landmarks as lmk
from synth.occluders import shapes

CLEARANCE_CM = 0.25


@dataclass(frozen=True)
class HeadState:
    skin: np.ndarray        # (V, 3) fine head vertices (face + skull), head frame
    normals: np.ndarray     # (V, 3)
    triangles: np.ndarray   # (T, 3)
    is_face_tri: np.ndarray  # (T,) bool
    landmarks: np.ndarray   # (478, 3)
    eye_centers: np.ndarray  # (2, 3)
    tree: cKDTree

    def lm(self, i: int) -> np.ndarray:
        return self.landmarks[i]


@dataclass(frozen=True)
class Piece:
    """One mesh of an occluder with its look. ``alpha`` < 1 is see-through (lenses)."""

    vertices: np.ndarray
    triangles: np.ndarray
    color: np.ndarray            # (3,) linear RGB or (N, 3) per vertex
    roughness: float = 0.6
    metallic: float = 0.0
    alpha: float = 1.0


def _rot(axis: str, deg: float) -> np.ndarray:
    t = np.radians(deg)
    c, s = np.cos(t), np.sin(t)
    return {"x": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]),
            "y": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
            "z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])}[axis]


def push_clear(pieces: list[Piece], head: HeadState, direction: np.ndarray,
               clearance: float = CLEARANCE_CM, iterations: int = 8) -> list[Piece]:
    """Translate rigid ``pieces`` along ``direction`` until they clear the skin everywhere.

    Signed distance of a vertex = offset from its nearest skin vertex along that vertex's
    normal; only vertices within 3 cm of the skin count (the rest are free in the air).
    """
    direction = np.asarray(direction, float) / np.linalg.norm(direction)
    verts = np.concatenate([p.vertices for p in pieces])
    shift = np.zeros(3)
    for _ in range(iterations):
        dist, idx = head.tree.query(verts + shift)
        near = dist < 3.0
        if not near.any():
            break
        signed = np.einsum("ij,ij->i", verts[near] + shift - head.skin[idx[near]], head.normals[idx[near]])
        need = clearance - signed.min()
        if need <= 1e-3:
            break
        along = max(0.3, float(np.mean(head.normals[idx[near]] @ direction)))
        shift = shift + direction * (need / along + 0.02)
    return [Piece(p.vertices + shift, p.triangles, p.color, p.roughness, p.metallic, p.alpha) for p in pieces]


# ------------------------------------------------------------------------------- hands
_HAND_ANCHORS = {"over_mouth": 13, "chin": 152, "cheek": 205, "over_eye": 159}


def hand(params: dict, head: HeadState) -> list[Piece]:
    """A hand with palm and five fingers, in one of the poses of ``_HAND_ANCHORS``."""
    s, side, pose = params["scale"], params["side"], params["pose"]
    color = np.asarray(params["color"])
    spread = params["spread"]
    palm = shapes.ellipsoid([0, 0, 0], [4.0 * s, 4.6 * s, 1.3 * s])
    pieces = [palm]
    for k, (dx, length) in enumerate(((-2.6, 6.6), (-0.9, 7.4), (0.9, 7.2), (2.5, 6.0))):
        ang = np.radians((k - 1.5) * spread)
        base = np.array([dx * s, 4.0 * s, 0.0])
        curl = params["curl"]
        pts = [base + np.array([np.sin(ang) * t, np.cos(ang) * t, -curl * (t / length) ** 2 * 2.0]) * s
               for t in np.linspace(0, length, 5)]
        pieces.append(shapes.tube(np.array(pts), np.linspace(0.85, 0.7, 5) * s, segments=8))
    thumb = np.array([[3.2, -1.8, 0.4], [5.0, 0.2, 0.6], [6.2, 2.0, 0.4]]) * s
    pieces.append(shapes.tube(thumb, 0.9 * s, segments=8))
    v, t = shapes.merge(*pieces)
    v = v * np.array([side, 1.0, 1.0])
    if side < 0:
        t = t[:, [0, 2, 1]]
    roll = {"over_mouth": 90.0 * side, "chin": -15.0 * side, "cheek": -20.0 * side, "over_eye": 25.0 * side}[pose]
    r = _rot("z", roll + params["twist"]) @ _rot("x", params["tilt"])
    anchor_id = _HAND_ANCHORS[pose]
    if pose in ("cheek", "over_eye") and side > 0:   # the subject's left side
        anchor_id = {205: 425, 159: 386}[anchor_id]
    anchor = head.lm(anchor_id)
    offset = {"over_mouth": [0, -0.5, 1.5], "chin": [1.5 * side, -4.5, 1.0],
              "cheek": [0, 1.0, 1.5], "over_eye": [0, 2.2, 2.0]}[pose]
    v = v @ r.T + anchor + np.asarray(offset) + np.asarray(params["offset"] + [0.0])
    direction = np.array([0.0, 0.0, 1.0]) if pose != "cheek" else np.array([-side * 0.7, 0.0, 0.7])
    return push_clear([Piece(v, t, color, roughness=0.7)], head, direction)


# ------------------------------------------------------------------------------- glasses
def glasses(params: dict, head: HeadState) -> list[Piece]:
    """Frames (rims, bridge, temples) and lenses (clear, tinted, sunglasses, mirrored)."""
    w, h, thick = params["width"], params["height"], params["frame"]
    frame_col = np.asarray(params["frame_color"])
    lens_alpha, lens_col, lens_metal = params["lens_alpha"], np.asarray(params["lens_color"]), params["lens_metallic"]
    pieces_frame, lenses = [], []
    rims = []
    for k, c in enumerate(head.eye_centers):
        side = -1.0 if k == 0 else 1.0
        center = c + np.array([0.0, -0.05, 0.0])
        r = _rot("y", -side * params["wrap"])
        rim = shapes.torus_path(np.zeros(3), 1.0, (w / 2, h / 2), 28) @ r.T + center
        rims.append(rim)
    # move both lens planes forward until the whole frame clears the face (nose included)
    base = [Piece(shapes.disc(rm[:-1], rm[:-1].mean(0))[0], shapes.disc(rm[:-1], rm[:-1].mean(0))[1],
                  lens_col) for rm in rims]
    cleared = push_clear(base, head, np.array([0.0, 0.0, 1.0]), clearance=0.45)
    shift = cleared[0].vertices[0] - base[0].vertices[0]
    rims = [rm + shift for rm in rims]
    for rm, lens in zip(rims, cleared):
        pieces_frame.append(shapes.tube(rm, thick, segments=6, caps=False))
        lenses.append(Piece(lens.vertices, lens.triangles, lens_col, roughness=0.05,
                            metallic=lens_metal, alpha=lens_alpha))
    inner_r = rims[0][np.argmax(rims[0][:, 0])]
    inner_l = rims[1][np.argmin(rims[1][:, 0])]
    nose_z = max(inner_r[2], head.lm(168)[2] + 0.4)
    bridge = np.array([inner_r, [0.0, inner_r[1] + 0.25, nose_z], inner_l])
    pieces_frame.append(shapes.tube(bridge, thick * 0.8, segments=6))
    for k, rm in enumerate(rims):
        outer = rm[np.argmin(rm[:, 0])] if k == 0 else rm[np.argmax(rm[:, 0])]
        side = -1.0 if k == 0 else 1.0
        temple = head.lm(127 if k == 0 else 356) + np.array([side * 0.6, 0.3, 0.0])
        ear = head.lm(234 if k == 0 else 454) + np.array([side * 0.7, 0.6, -2.5])
        path = np.array([outer, outer + np.array([side * 0.6, 0.0, -1.0]), temple, ear])
        pieces_frame.append(shapes.tube(path, thick * 0.7, segments=6))
    v, t = shapes.merge(*pieces_frame)
    frame = push_clear([Piece(v, t, frame_col, roughness=0.35, metallic=params["frame_metallic"])], head,
                       np.array([0.0, 0.0, 1.0]))
    return frame + lenses


# ------------------------------------------------------------------------------- surface-following
def _offset_region(head: HeadState, select: np.ndarray, offset: float, smooth: int = 6,
                   face_only: bool = True, normals: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mesh of the skin triangles whose 3 vertices are selected, offset along normals and
    relaxed (a taut cloth does not dip into folds). Returns (vertices, triangles)."""
    tris = head.triangles[head.is_face_tri] if face_only else head.triangles
    keep = select[tris].all(axis=1)
    tris = tris[keep]
    used = np.unique(tris)
    remap = -np.ones(len(head.skin), np.int64)
    remap[used] = np.arange(len(used))
    normals = head.normals if normals is None else normals
    v = head.skin[used] + offset * normals[used]
    t = remap[tris]
    # neighbour sums as one sparse product: each triangle links its 3 corners both ways (an
    # edge shared by two triangles counts twice, as a cloth spring on both sides would)
    rows = np.concatenate([t[:, 0], t[:, 0], t[:, 1], t[:, 1], t[:, 2], t[:, 2]])
    cols = np.concatenate([t[:, 1], t[:, 2], t[:, 0], t[:, 2], t[:, 0], t[:, 1]])
    adj = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(used), len(used)))
    deg = np.asarray(adj.sum(axis=1)).ravel()
    for _ in range(smooth):  # Laplacian relaxation that never moves a vertex inwards
        avg = np.where(deg[:, None] > 0, (adj @ v) / np.maximum(deg, 1)[:, None], v)
        n_used = normals[used]
        step = avg - v
        inward = np.einsum("ij,ij->i", step, n_used) < 0
        step[inward] -= np.einsum("ij,ij->i", step[inward], n_used[inward])[:, None] * n_used[inward]
        v = v + 0.5 * step
    return v, t


def _lift_clear(v: np.ndarray, head: HeadState, near_point: np.ndarray, radius: float,
                direction: np.ndarray, clearance: float = 0.15) -> np.ndarray:
    """Move cloth vertices near ``near_point`` that sit behind the skin (concave corners)
    forward until they clear it; exact closest-point test, a few vertices only."""
    from synth.occluders.surface import signed_distance

    lips = np.array(lmk.INNER_UPPER_LIP + lmk.INNER_LOWER_LIP)
    tris = head.triangles[head.is_face_tri & ~np.isin(head.triangles, lips).any(axis=1)]
    idx = np.flatnonzero(np.linalg.norm(v - near_point, axis=1) < radius)
    out = v.copy()
    for _ in range(4):
        sd = signed_distance(out[idx], head.skin, tris, tree=head.tree)
        bad = sd < clearance
        if not bad.any():
            break
        out[idx[bad]] += direction * (clearance - sd[bad] + 0.05)[:, None]
    return out


def _close_hole_near(v: np.ndarray, t: np.ndarray, point: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fan-fill the boundary loop of mesh (v, t) that passes closest to ``point`` (the mouth
    opening under a mask) so the cloth has no hole where the lips part."""
    e = np.sort(np.concatenate([t[:, [0, 1]], t[:, [1, 2]], t[:, [2, 0]]]), axis=1)
    edges, counts = np.unique(e, axis=0, return_counts=True)
    boundary = edges[counts == 1]
    if len(boundary) == 0:
        return v, t
    nbr: dict[int, list[int]] = {}
    for a, b in boundary.tolist():
        nbr.setdefault(a, []).append(b)
        nbr.setdefault(b, []).append(a)
    loops, seen = [], set()
    for start in nbr:
        if start in seen:
            continue
        loop, prev, cur = [start], None, start
        seen.add(start)
        while True:
            nxt = [n for n in nbr[cur] if n != prev]
            if not nxt or nxt[0] == start or nxt[0] in seen:
                break
            prev, cur = cur, nxt[0]
            loop.append(cur)
            seen.add(cur)
        loops.append(loop)
    best = min(loops, key=lambda lp: np.linalg.norm(v[lp].mean(0) - point))
    if len(best) < 3 or np.linalg.norm(v[best].mean(0) - point) > 2.0:
        return v, t
    centre = len(v)
    fan = np.array([[centre, best[i], best[(i + 1) % len(best)]] for i in range(len(best))])
    # the cloth stretches over the lips, not into the mouth: centre as far forward as the
    # most prominent part of the mask around the opening
    c = v[best].mean(0)
    around = np.linalg.norm(v[:, :2] - c[:2], axis=1) < 2.5
    centre_v = np.array([c[0], c[1], v[around, 2].max() if around.any() else c[2] + 0.6])
    return np.concatenate([v, centre_v[None]]), np.concatenate([t, fan])


def face_mask(params: dict, head: HeadState) -> list[Piece]:
    """Surgical or cloth mask over nose and mouth, with ear straps."""
    x, y = head.skin[:, 0], head.skin[:, 1]
    nose_y = head.lm(6)[1] - params["top"]
    top = nose_y - 0.28 * np.abs(x)
    chin_y = head.lm(152)[1] - 0.6
    select = (y < top) & (y > chin_y - 3.0) & (np.abs(x) < 7.0)
    # around the lips the cloth spans the mouth: offset along one forward normal there, not
    # along the lips' inner surfaces (which face into the mouth at the corners)
    mouth = 0.5 * (head.lm(13) + head.lm(14))
    near = np.linalg.norm(head.skin - mouth, axis=1)
    forward = np.array([0.0, 0.0, 1.0])
    w = np.clip((3.6 - near) / 1.2, 0, 1)[:, None]
    normals = head.normals * (1 - w) + forward * w
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    normals = np.where(length > 1e-3, normals / np.maximum(length, 1e-6), forward)
    v, t = _offset_region(head, select, 0.35, smooth=25, normals=normals)
    if len(t) == 0:
        return []
    v, t = _close_hole_near(v, t, mouth + forward * 0.6)
    v = _lift_clear(v, head, near_point=mouth, radius=4.0, direction=forward)
    color = np.asarray(params["color"])
    if params["style"] == "surgical":  # pleats: horizontal bands
        shade = 0.88 + 0.12 * (np.sin(v[:, 1] * 5.0) > 0)
        color = color * shade[:, None]
    pieces = [Piece(v, t, color, roughness=0.9)]
    for k in (0, 1):
        side = -1.0 if k == 0 else 1.0
        edge = v[np.argmin(v[:, 0])] if k == 0 else v[np.argmax(v[:, 0])]
        ear = head.lm(234 if k == 0 else 454)
        # route the strap over the skin: nearest skin points lifted along their normals
        path = []
        for f in np.linspace(0.0, 1.0, 6):
            p = edge * (1 - f) + ear * f
            _, i = head.tree.query(p)
            path.append(head.skin[i] + head.normals[i] * 0.3)
        sv, st = shapes.tube(np.array(path), 0.12, segments=5)
        pieces.append(Piece(sv, st, np.asarray(params["color"]) * 0.95, roughness=0.9))
    return pieces


def hair_fringe(params: dict, head: HeadState) -> list[Piece]:
    """Fringe or side-swept strands over the forehead, with a jagged lower edge."""
    x, y, z = head.skin[:, 0], head.skin[:, 1], head.skin[:, 2]
    brow_y = head.lm(105)[1]
    phase = params["phase"]
    cut = brow_y + params["length"] + params["slope"] * x + 0.35 * np.sin(x * params["jag"] + phase)
    select = (y > cut) & (z > -2.0)
    v, t = _offset_region(head, select, 0.3, smooth=2, face_only=False)
    if len(t) == 0:
        return []
    streak = 0.85 + 0.15 * np.sin(v[:, 0] * 9.0 + phase)
    return [Piece(v, t, np.asarray(params["color"]) * streak[:, None], roughness=0.8)]


def cap(params: dict, head: HeadState) -> list[Piece]:
    """A cap (shell over the skull + front brim) or a hat (shell + round brim)."""
    y, z = head.skin[:, 1], head.skin[:, 2]
    band = head.lm(10)[1] - params["depth"] + 0.15 * z
    v, t = _offset_region(head, y > band, params["thickness"], smooth=3, face_only=False)
    color = np.asarray(params["color"])
    pieces = [Piece(v, t, color, roughness=0.85)]
    if len(v) == 0:
        return []
    rim_y = float(np.median(v[v[:, 1] < v[:, 1].min() + 0.8, 1]))
    center = np.array([0.0, rim_y, -4.0])
    if params["style"] == "cap":
        ang = np.linspace(-np.pi / 2, np.pi / 2, 13)
        outer = np.stack([7.5 * np.sin(ang), np.zeros_like(ang), 4.0 + 7.0 * np.cos(ang)], 1)
        inner = outer * np.array([0.92, 1, 1]) - np.array([0, 0, 0.0])
        inner[:, 2] = np.minimum(inner[:, 2], 3.0 + 0.5 * np.cos(ang))
    else:
        ang = np.linspace(0, 2 * np.pi, 25)[:-1]
        outer = np.stack([12.5 * np.cos(ang), np.zeros_like(ang), 12.5 * np.sin(ang)], 1)
        inner = outer * 0.62
    ring = np.concatenate([inner, outer]) @ _rot("x", params["brim_tilt"]).T + center
    n = len(inner)
    closed = params["style"] != "cap"
    quads = [(i, (i + 1) % n) for i in range(n if closed else n - 1)]
    # a slab, 0.5 cm thick, so the brim is never thinner than a pixel edge-on
    top, bottom = ring + [0, 0.25, 0], ring - [0, 0.25, 0]
    verts = np.concatenate([top, bottom])
    m = len(ring)
    tris = []
    for i, j in quads:
        tris += [[i, n + i, j], [j, n + i, n + j]]                           # top
        tris += [[m + i, m + j, m + n + i], [m + j, m + n + j, m + n + i]]   # bottom
        tris += [[n + i, m + n + i, n + j], [n + j, m + n + i, m + n + j]]   # outer edge
        tris += [[i, j, m + i], [j, m + j, m + i]]                            # inner edge
    brim = Piece(verts, np.array(tris), color * 0.9, roughness=0.85)
    pieces.append(push_clear([brim], head, np.array([0.0, 1.0, 0.0]))[0])
    return pieces


# ------------------------------------------------------------------------------- held objects
def microphone(params: dict, head: HeadState) -> list[Piece]:
    mouth = head.lm(14)
    headball = shapes.ellipsoid([0, 0, 0], [2.4, 2.4, 2.4], rings=8, segments=12)
    handle = shapes.tube(np.array([[0, -2.0, 0], [0, -16.0, 0]]), np.array([1.3, 1.0]), segments=10)
    tilt = _rot("x", params["tilt"]) @ _rot("z", params["roll"])
    pieces = [Piece(headball[0] @ tilt.T, headball[1], np.asarray(params["grille"]), roughness=0.5, metallic=0.6),
              Piece(handle[0] @ tilt.T, handle[1], np.asarray(params["color"]), roughness=0.4)]
    pos = mouth + np.array([params["offset"][0], -1.5 + params["offset"][1], 3.5])
    pieces = [Piece(p.vertices + pos, p.triangles, p.color, p.roughness, p.metallic) for p in pieces]
    return push_clear(pieces, head, np.array([0.0, -0.3, 1.0]))


def cup(params: dict, head: HeadState) -> list[Piece]:
    body = shapes.cylinder([0, 0, 0], params["radius"], params["height"], segments=18, open_top=True)
    handle = shapes.tube(np.array([[params["radius"], 2.5, 0], [params["radius"] + 2.2, 1.5, 0],
                                   [params["radius"] + 2.2, -1.5, 0], [params["radius"], -2.5, 0]]),
                         0.45, segments=6)
    rot = _rot("x", params["tilt"]) @ _rot("y", params["turn"])
    top = head.lm(17) + np.array([params["offset"][0], -params["height"] / 2 + params["offset"][1], params["radius"] + 1.0])
    pieces = [Piece(body[0] @ rot.T + top, body[1], np.asarray(params["color"]), roughness=0.3),
              Piece(handle[0] @ rot.T + top, handle[1], np.asarray(params["color"]), roughness=0.3)]
    return push_clear(pieces, head, np.array([0.0, 0.0, 1.0]))


def phone(params: dict, head: HeadState) -> list[Piece]:
    side = params["side"]
    ear = head.lm(234 if side < 0 else 454)
    rot = _rot("y", side * params["angle"]) @ _rot("z", side * params["roll"])
    v, t = shapes.box([0, 0, 0], [7.2, 15.0, 0.8], rot)
    pos = ear + np.array([side * 0.8, -1.5, 3.0])
    color = np.asarray(params["color"])
    piece = Piece(v + pos, t, color, roughness=0.25, metallic=0.3)
    return push_clear([piece], head, np.array([side, 0.0, 0.4]))


def random_shape(params: dict, head: HeadState) -> list[Piece]:
    size = np.asarray(params["size"])
    center = np.array([params["x"], params["y"], head.skin[:, 2].max()]) + np.array([0, 0, 1.0 + params["gap"]])
    rot = _rot("z", params["angle"]) @ _rot("x", params["angle"] * 0.5)
    if params["shape"] == "box":
        v, t = shapes.box([0, 0, 0], size, rot)
    elif params["shape"] == "ellipsoid":
        v, t = shapes.ellipsoid([0, 0, 0], size / 2)
        v = v @ rot.T
    else:
        v, t = shapes.cylinder([0, 0, 0], size[0] / 2, size[1], axis=1)
        v = v @ rot.T
    v = v + center
    rng = np.random.default_rng(params["texture_seed"])  # texture from the spec's own seed
    base = np.asarray(params["color"])
    color = np.clip(base * rng.uniform(0.6, 1.2, (len(v), 1)), 0, 1)
    return push_clear([Piece(v, t, color, roughness=0.6)], head, np.array([0.0, 0.0, 1.0]))


BUILDERS = {"hand": hand, "glasses": glasses, "mask": face_mask, "hair": hair_fringe, "hat": cap,
            "microphone": microphone, "cup": cup, "phone": phone, "shape": random_shape}
