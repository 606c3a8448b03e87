"""Blender meshes of the render parts: building, per-sample updates, AU shape keys.

Part of the Blender backend (:mod:`synth.render.blender_backend`, which mixes
:class:`MeshSlots` into its renderer). A *slot* is one Blender object holding a group of
parts that share a vertex array (e.g. the skin and its wrinkle decals), plus the id-only
back faces of inside-out shells and the wet cornea shell over each eyeball. A slot is built
once and updated in place per sample: positions (AU shape keys on the skin), colours, UVs,
per-face material slots and triangle ids. Only a change of topology (a new occluder)
rebuilds it.

:class:`MeshSlots` needs from its host: ``_new(collection, name, *args)`` (a tracked new
datablock), ``_material(part, geom)``, ``_culled_material()``, ``_cornea_material()``, the
collections ``_shared``, ``_ids_only``, ``_colour_only``, the list ``_datablocks`` and
``identity_cache``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import bpy
import numpy as np

from aukit.aus import RIG_AUS, au_vector
from synth import parts as rig_parts
from synth.identity.paint import srgb_to_linear
from synth.render.blender_materials import set_input as _set, set_surface as _set_surface
from synth.render.blender_params import id_rgb, inside_out, part_layout
from synth.rig import SEG_CLASSES

MOUTH_AMBIENT_GAIN = 1.0         # mouth interior emission = colour x ambient x this
CORNEA_OFFSET_CM = 0.015         # tear film above the eyeball
CORNEA_BULGE_CM = 0.06           # extra height of the cornea over the iris centre
CORNEA_MAX_ANGLE = 75.0          # degrees from the gaze axis covered by the wet shell


@dataclass
class Slot:
    """Blender objects of one group of parts sharing a vertex array."""

    names: tuple[str, ...]
    obj: object
    mesh: object
    tris: list[np.ndarray]                     # the parts' triangles when built (topology check)
    nverts: int
    layouts: list                              # PartLayout per part
    face_part: np.ndarray                      # (faces,) index of the face's part in the group
    face_tri: np.ndarray                       # (faces,) the face's triangle index in its part
    materials: list                            # per part: (material, principled node)
    back: dict = field(default_factory=dict)   # part index -> (obj, mesh) id-only back faces
    cornea: dict = field(default_factory=dict)  # part index -> (obj, mesh, template offsets)
    id_offsets: tuple = ()
    culled: np.ndarray | None = None           # per part: an inside-out shell (the mouth cavity)
    key_identity: object = None                # identity whose AU shape keys are loaded


class MeshSlots:
    """Slot building and per-sample updates (see the module docstring for the host contract)."""

    def _make_slot(self, key, plist, geom) -> Slot:
        name = "+".join(key)
        layouts = [part_layout(p) for p in plist]
        faces, face_part, face_tri = [], [], []
        for k, (p, lay) in enumerate(zip(plist, layouts)):
            faces.append(np.asarray(p.triangles)[lay.primary])
            face_part.append(np.full(len(lay.primary), k))
            face_tri.append(lay.primary)
        faces = np.concatenate(faces)
        nverts = len(plist[0].vertices)
        mesh = self._new(bpy.data.meshes, name)
        _fill_mesh(mesh, plist[0].vertices, faces)
        mesh.polygons.foreach_set("use_smooth", np.ones(len(faces), bool))
        mesh.polygons.foreach_set("material_index", np.concatenate(face_part).astype(np.int32))
        mesh.color_attributes.new("Col", "FLOAT_COLOR", "CORNER")
        ids = mesh.color_attributes.new("ids", "FLOAT_COLOR", "CORNER")
        mesh.color_attributes.active_color = ids
        if any(p.uv is not None for p in plist):
            mesh.uv_layers.new(name="UVMap")
        materials = []
        for p, lay in zip(plist, layouts):
            mat, bsdf = self._material(p, geom)
            mesh.materials.append(mat)
            materials.append((mat, bsdf))
        culled = np.zeros(len(plist), bool)
        for k, (p, lay) in enumerate(zip(plist, layouts)):
            culled[k] = p.seg == SEG_CLASSES["mouth"] and inside_out(p, lay)
        mesh.materials.append(self._culled_material())     # slot len(plist): invisible
        obj = self._new(bpy.data.objects, name, mesh)
        self._shared.objects.link(obj)
        slot = Slot(key, obj, mesh, [np.array(p.triangles, copy=True) for p in plist], nverts, layouts,
                     np.concatenate(face_part), np.concatenate(face_tri), materials, culled=culled)
        for k, (p, lay) in enumerate(zip(plist, layouts)):
            if len(lay.back_tris):
                bmesh = self._new(bpy.data.meshes, f"{p.name}_back")
                _fill_mesh(bmesh, p.vertices, np.asarray(p.triangles)[lay.back_tris][:, [0, 2, 1]])
                battr = bmesh.color_attributes.new("ids", "FLOAT_COLOR", "CORNER")
                bmesh.color_attributes.active_color = battr
                bobj = self._new(bpy.data.objects, f"{p.name}_back", bmesh)
                self._ids_only.objects.link(bobj)
                slot.back[k] = (bobj, bmesh)
            if p.seg == SEG_CLASSES["eyes"]:
                cornea = self._make_cornea(p)
                if cornea is not None:
                    slot.cornea[k] = cornea
        return slot

    def _make_cornea(self, part):
        unit, tris, angle = rig_parts.eyeball()
        if len(unit) != len(part.vertices):
            return None
        keep = (angle[tris] <= CORNEA_MAX_ANGLE).all(axis=1)
        t = np.clip(1 - angle / np.degrees(np.arcsin(rig_parts.IRIS_RADIUS / rig_parts.EYE_RADIUS)), 0, 1)
        lift = CORNEA_OFFSET_CM + CORNEA_BULGE_CM * t ** 1.5
        mesh = self._new(bpy.data.meshes, f"{part.name}_cornea")
        _fill_mesh(mesh, part.vertices, tris[keep])
        mesh.polygons.foreach_set("use_smooth", np.ones(int(keep.sum()), bool))
        mesh.materials.append(self._cornea_material())
        obj = self._new(bpy.data.objects, f"{part.name}_cornea", mesh)
        self._colour_only.objects.link(obj)
        return obj, mesh, lift

    def _update_slot(self, slot: Slot, plist, offsets, geom) -> None:
        mesh, obj = slot.mesh, slot.obj
        frame = geom.frames[plist[0].node]
        obj.matrix_world = to_matrix(frame)
        # positions: AU shape keys on the skin, else the vertices themselves
        if not self._skin_shape_keys(slot, plist, geom):
            mesh.vertices.foreach_set("co", np.asarray(plist[0].vertices, np.float32).ravel())
        # per-corner colours, UVs and ids
        ncorner = len(slot.face_part) * 3
        col = np.ones((len(slot.face_part), 3, 4), np.float32)
        uv = np.zeros((len(slot.face_part), 3, 2), np.float32)
        photo = getattr(geom, "photo", None)
        drawn = np.ones(len(plist), bool)
        for k, (p, lay) in enumerate(zip(plist, slot.layouts)):
            sel = slot.face_part == k
            tri = np.asarray(p.triangles)[lay.primary]
            if photo is not None:            # flat colours (rgb multipliers + opacity) of the photo pass
                drawn[k] = p.name in photo.colors
                if drawn[k]:
                    col[sel] = _photo_linear(np.asarray(photo.colors[p.name], np.float32), p.texture == "face")[tri]
            elif p.colors is not None:
                col[sel, :, :3] = np.asarray(p.colors, np.float32)[tri]
            if p.uv is not None:
                uv[sel] = np.asarray(p.uv, np.float32)[tri]
            mat, bsdf = slot.materials[k]
            _set_surface(bsdf, p)
            _set(mat.node_tree.nodes["photo"], "Fac", 0.0 if photo is None else 1.0)
            if p.seg == SEG_CLASSES["mouth"]:
                _set(bsdf, "Emission Strength", MOUTH_AMBIENT_GAIN * float(geom.spec.ambient))
        mesh.color_attributes["Col"].data.foreach_set("color", col.reshape(ncorner * 4))
        mesh.polygons.foreach_set("material_index", self._material_index(slot, plist, geom, drawn))
        if "UVMap" in mesh.uv_layers:
            mesh.uv_layers["UVMap"].uv.foreach_set("vector", uv.reshape(ncorner * 2))
        if tuple(offsets) != slot.id_offsets:
            gid = np.asarray(offsets)[slot.face_part] + slot.face_tri + 1
            rgba = np.concatenate([id_rgb(gid), np.ones((len(gid), 1), np.float32)], 1)
            mesh.color_attributes["ids"].data.foreach_set("color", np.repeat(rgba, 3, axis=0).ravel())
            for k, (bobj, bmesh) in slot.back.items():
                lay = slot.layouts[k]
                rgba = np.concatenate([id_rgb(offsets[k] + lay.back_ids + 1),
                                       np.ones((len(lay.back_ids), 1), np.float32)], 1)
                bmesh.color_attributes["ids"].data.foreach_set("color", np.repeat(rgba, 3, axis=0).ravel())
            slot.id_offsets = tuple(offsets)
        mesh.update()
        for k, (bobj, bmesh) in slot.back.items():
            bmesh.vertices.foreach_set("co", np.asarray(plist[k].vertices, np.float32).ravel())
            bmesh.update()
            bobj.matrix_world = to_matrix(geom.frames[plist[k].node])
        for k, (cobj, cmesh, lift) in slot.cornea.items():
            p = plist[k]
            cobj.hide_render = photo is not None     # the photo pass has no cornea
            cmesh.vertices.foreach_set("co", (p.vertices + p.normals * lift[:, None]).astype(np.float32).ravel())
            cmesh.update()
            cobj.matrix_world = to_matrix(geom.frames[p.node])

    def _material_index(self, slot: Slot, plist, geom, drawn: np.ndarray) -> np.ndarray:
        """Per-face material slots. The invisible material goes to faces of parts not drawn
        in this sample's colour pass (``drawn``: photo identities draw only the parts they
        colour) and to faces of inside-out shells that turn away from the camera.

        The mouth cavity is a closed, inward-facing shell around teeth and tongue. pyrender
        (single-sided materials) and the id pass cull its front wall, which is seen from
        behind; Cycles would draw it and also block the light entering the mouth. Hiding
        exactly those faces (for every ray) keeps the image consistent with the labels and
        lets teeth and tongue catch the light that passes the lips.
        """
        index = slot.face_part.astype(np.int32).copy()
        eye = geom.camera.pose[:3, 3]
        for k, p in enumerate(plist):
            if not drawn[k]:
                index[slot.face_part == k] = len(plist)
                continue
            if not slot.culled[k]:
                continue
            m = geom.frames[p.node]
            tri = np.asarray(p.vertices)[np.asarray(p.triangles)[slot.layouts[k].primary]] @ m[:3, :3].T + m[:3, 3]
            n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
            away = np.einsum("ij,ij->i", n, eye - tri[:, 0]) <= 0
            sel = np.flatnonzero(slot.face_part == k)
            index[sel[away]] = len(plist)
        return index

    def _skin_shape_keys(self, slot: Slot, plist, geom) -> bool:
        """Drive the skin with AU shape keys; False when not applicable (no identity cache)."""
        if self.identity_cache is None or "face" not in slot.names:
            return False
        try:
            _, ident_geo = self.identity_cache.get(geom.spec.identity)
        except Exception:
            return False
        base = np.asarray(ident_geo.base, np.float64)
        fields = self.identity_cache.rig.au_fields
        if base.shape != np.shape(plist[0].vertices) or fields.shape[0] != len(RIG_AUS):
            return False
        obj, mesh = slot.obj, slot.mesh
        ident_key = (id(ident_geo), repr(sorted(geom.spec.identity.items())))
        if slot.key_identity != ident_key:
            mesh.vertices.foreach_set("co", base.astype(np.float32).ravel())
            if mesh.shape_keys is None:
                obj.shape_key_add(name="Basis", from_mix=False)
                for au in RIG_AUS:
                    kb = obj.shape_key_add(name=au, from_mix=False)
                    kb.slider_min, kb.slider_max = 0.0, 5.0
                obj.shape_key_add(name="rig_correction", from_mix=False)
            blocks = mesh.shape_keys.key_blocks
            blocks["Basis"].data.foreach_set("co", base.astype(np.float32).ravel())
            for k, au in enumerate(RIG_AUS):
                blocks[au].data.foreach_set("co", (base + fields[k]).astype(np.float32).ravel())
            slot.key_identity = ident_key
        aus = au_vector(geom.spec.aus)
        blocks = mesh.shape_keys.key_blocks
        linear = base + np.tensordot(aus.astype(np.float32), fields, axes=1)
        for k, au in enumerate(RIG_AUS):
            blocks[au].value = float(aus[k])
        # the rig's lid/lip collision projection is not linear: one corrective key carries it
        corr = base + (np.asarray(plist[0].vertices, np.float64) - linear)
        blocks["rig_correction"].data.foreach_set("co", corr.astype(np.float32).ravel())
        blocks["rig_correction"].value = 1.0
        return True

    def _drop(self, slot: Slot) -> None:
        blocks = [slot.obj, slot.mesh]
        for pair in (*slot.back.values(), *slot.cornea.values()):
            blocks += list(pair[:2])
        blocks += [m for m, _ in slot.materials]
        bpy.data.batch_remove(blocks)
        gone = {id(b) for b in blocks}
        self._datablocks = [b for b in self._datablocks if id(b) not in gone]


def _photo_linear(rgba: np.ndarray, textured: bool) -> np.ndarray:
    """The photo pass's vertex colours for a linear-light emission shader.

    pyrender's flat pass multiplies in sRGB space (sRGB texture x colour, written as sRGB):
    untextured colours are sRGB-encoded, so they are linearised exactly; a textured part's
    colour multiplies the sRGB texture, i.e. its linear texture by about colour^2.2.
    """
    out = rgba.copy()
    c = np.clip(out[:, :3], 0.0, None)
    out[:, :3] = c ** 2.2 if textured else srgb_to_linear(np.clip(c, 0, 1))
    return out


def to_matrix(m: np.ndarray):
    from mathutils import Matrix

    return Matrix([list(map(float, row)) for row in np.asarray(m)])


def _fill_mesh(mesh, vertices: np.ndarray, faces: np.ndarray) -> None:
    faces = np.asarray(faces, np.int32)
    mesh.vertices.add(len(vertices))
    mesh.vertices.foreach_set("co", np.asarray(vertices, np.float32).ravel())
    mesh.loops.add(faces.size)
    mesh.loops.foreach_set("vertex_index", faces.ravel())
    mesh.polygons.add(len(faces))
    mesh.polygons.foreach_set("loop_start", np.arange(0, faces.size, 3, dtype=np.int32))
    mesh.update()


def same_topology(slot: Slot, plist) -> bool:
    return (len(plist) == len(slot.tris) and len(plist[0].vertices) == slot.nverts
            and all(np.array_equal(a, b.triangles) for a, b in zip(slot.tris, plist)))
