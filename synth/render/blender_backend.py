"""Blender (``bpy``) backend: Cycles or EEVEE colour, a Workbench id pass, shared labels.

With :mod:`synth.render.blender_materials` (its shader graphs), the only module that imports ``bpy`` (``pip install 'ausynth[blender]'``).

One Blender scene pair per renderer, built on the first :meth:`BlenderRenderer.render` and
reused for every sample:

* ``colour`` scene (Cycles on the CPU by default, or EEVEE): physically based materials,
  subsurface scattering on the skin, the identity's face texture, a wet cornea over each
  eyeball, sun lamps (and point lamps) from the spec, ambient light from the world. The
  film is transparent; the result is read back as linear premultiplied RGBA (OpenEXR) and
  composited over the same background as pyrender's, in linear light.
* ``ids`` scene (Workbench): the same objects flat-shaded with their 24-bit triangle ids
  (per-corner colour attribute), no antialiasing, ``Raw`` view transform, no dithering,
  back faces culled like pyrender's single-sided id pass. Depth is the plane of the
  triangle seen at each pixel centre (:func:`synth.render.blender_params.depth_from_ids`),
  and :func:`synth.render.labels.pixel_labels` derives every label, as for pyrender.

Per sample only data changes: vertex positions (the skin through AU shape keys when the
identity cache is given, plus one corrective key for the rig's lid/lip collisions), object
transforms, colours, UVs, texture pixels, camera, lamps and the Cycles seed. A mesh is
rebuilt only when a part's topology changes (a new occluder).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field

import bpy
import numpy as np
from PIL import Image

from aukit.aus import RIG_AUS, au_vector
from synth import parts as rig_parts
from synth.identity.paint import srgb_to_linear, to_srgb8
from synth.render import blender_materials as mats
from synth.render import compose
from synth.render.blender_materials import SUBSURFACE, set_input as _set, set_surface as _set_surface, world_colour_socket as _world_nodes
from synth.render.blender_params import (blender_camera, cycles_seed, depth_from_ids, id_offsets, id_rgb,
                                         inside_out, light_rotation, mesh_groups, part_layout)
from synth.render.labels import decode_ids, pixel_labels
from synth.rig import SEG_CLASSES
from synth.scene import SceneGeometry

ENGINES = {"cycles": "CYCLES", "eevee": "BLENDER_EEVEE"}
SUN_ANGLE_DEG = 2.0              # apparent size of the sun lamps: soft shadow edges, visible catchlights
POINT_RADIUS_CM = 2.0
MOUTH_AMBIENT_GAIN = 1.0         # mouth interior emission = colour x ambient x this
CORNEA_OFFSET_CM = 0.015         # tear film above the eyeball
CORNEA_BULGE_CM = 0.06           # extra height of the cornea over the iris centre
CORNEA_MAX_ANGLE = 75.0          # degrees from the gaze axis covered by the wet shell
ZNEAR_CM, ZFAR_CM = 5.0, 2000.0  # clipping planes of pyrender's camera
_instances = itertools.count()


@dataclass
class _Slot:
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


class BlenderRenderer:
    """Renders :class:`SceneGeometry` with Blender; same outputs as the pyrender backend.

    Args:
      size: output side in pixels.
      samples: Cycles samples per pixel (EEVEE: TAA samples).
      denoise: OpenImageDenoise on the Cycles result (albedo + normal guided).
      adaptive_sampling, adaptive_threshold: Cycles adaptive sampling (noise threshold).
      threads: CPU threads for Cycles; 0 = automatic (all cores).
      engine: ``cycles`` or ``eevee`` (EEVEE renders headless through software OpenGL,
        ~3 s per image here; Cycles is the default).
      max_bounces: total light bounces (Cycles).
      subsurface: skin subsurface scattering: ``random_walk`` (Cycles' volumetric random
        walk, the most accurate), ``burley`` (diffusion profile, ~25% faster) or ``none``.
      filter_width: pixel filter width in pixels (Blackman-Harris).
      identity_cache: the :class:`synth.scene.IdentityCache` the scenes are built with;
        when given, the skin carries the rig's AU blendshapes as shape keys (value = FACS
        intensity) on the identity's neutral shape, else its vertices are set directly.
      workdir: folder for the per-pass image files (default: a private temp folder).
      verbose: let Blender's own log lines through.
    """

    name = "blender"

    def __init__(self, size: int, samples: int = 32, denoise: bool = True, adaptive_sampling: bool = True,
                 adaptive_threshold: float = 0.02, threads: int = 0, engine: str = "cycles",
                 max_bounces: int = 6, filter_width: float = 1.2, subsurface: str = "random_walk",
                 identity_cache=None,
                 workdir: str | None = None, verbose: bool = False):
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {sorted(ENGINES)}, got {engine!r}")
        if subsurface not in SUBSURFACE:
            raise ValueError(f"subsurface must be one of {sorted(SUBSURFACE)}, got {subsurface!r}")
        if samples < 1 or threads < 0 or not 0 <= adaptive_threshold < 1:
            raise ValueError("samples must be >= 1, threads >= 0, adaptive_threshold in [0, 1)")
        self.size, self.samples, self.denoise = int(size), int(samples), bool(denoise)
        self.adaptive_sampling, self.adaptive_threshold = bool(adaptive_sampling), float(adaptive_threshold)
        self.threads, self.engine, self.max_bounces = int(threads), engine, int(max_bounces)
        self.subsurface = subsurface
        self.filter_width, self.identity_cache, self.verbose = float(filter_width), identity_cache, verbose
        self._own_workdir = workdir is None
        self.workdir = os.path.abspath(workdir or tempfile.mkdtemp(prefix="ausynth-blender-"))
        self._prefix = f"ausynth{next(_instances)}_"
        self._built = False
        self._slots: dict[tuple[str, ...], _Slot] = {}
        self._suns: list = []
        self._points: list = []
        self._datablocks: list = []
        self._face_image = self._cornea_mat = self._culled_mat = None

    # ------------------------------------------------------------------ public
    def render(self, geom: SceneGeometry) -> dict[str, np.ndarray]:
        """Render one scene: ``rgb`` (H, W, 3) uint8 sRGB plus the labels of
        :func:`synth.render.labels.pixel_labels`, as :class:`PyrenderRenderer`."""
        cam = geom.camera
        if (cam.width, cam.height) != (self.size, self.size):
            raise ValueError(f"camera is {cam.width}x{cam.height}, renderer size is {self.size}")
        if not self._built:
            self._build()
        self._sync(geom)
        rgba = self._colour_pass(geom)
        photo = getattr(geom, "photo", None)
        bg = compose.background(geom.spec.background, self.size) if photo is None else photo.backdrop
        lin = rgba[..., :3] + (1.0 - rgba[..., 3:4]) * bg
        if photo is not None and photo.grayscale:
            lin = np.repeat((lin @ _LUMA)[..., None], 3, axis=2)
        rgb = to_srgb8(lin)
        # see-through parts (alpha < 0.5: clear lenses) are not in the id pass, as in pyrender's
        skip = [o for o, p in self._objects_by_part(geom) if getattr(p, "alpha", 1.0) < 0.5]
        ids = self._id_pass(skip)
        if photo is not None:
            self.last_photo_holes = _check_photo_holes(geom, ids, rgba[..., 3])
        clear = None
        occluders = [o for o, p in self._objects_by_part(geom) if getattr(p, "instance", 0)]
        if occluders:   # what the occluders hide: the same pass without them
            clear = self._id_pass(skip + occluders)
        return {"rgb": rgb, **pixel_labels(geom, ids, depth_from_ids(geom, ids), clear)}

    def close(self) -> None:
        """Remove this renderer's Blender data and its temporary folder."""
        if self._built:
            alive = []
            for block in self._datablocks:
                with contextlib.suppress(ReferenceError):
                    block.name   # raises if Blender already freed it
                    alive.append(block)
            bpy.data.batch_remove(alive)
        self._built, self._slots, self._suns, self._points, self._datablocks = False, {}, [], [], []
        self._face_image = self._cornea_mat = self._culled_mat = None
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def save_blend(self, path: str) -> None:
        """Write the current Blender state to a .blend file (debugging: open it in Blender)."""
        bpy.ops.wm.save_as_mainfile(filepath=os.path.abspath(path), copy=True)

    # ------------------------------------------------------------------ scene
    def _new(self, collection, name: str, *args, **kwargs):
        block = collection.new(self._prefix + name, *args, **kwargs)
        self._datablocks.append(block)
        return block

    def _build(self) -> None:
        os.makedirs(self.workdir, exist_ok=True)
        d = bpy.data
        self._shared = self._new(d.collections, "geometry")
        self._colour_only = self._new(d.collections, "colour_only")
        self._ids_only = self._new(d.collections, "ids_only")
        self._cam_data = self._new(d.cameras, "camera")
        self._cam = self._new(d.objects, "camera", self._cam_data)
        self._cam_data.sensor_fit = "HORIZONTAL"
        self._cam_data.clip_start, self._cam_data.clip_end = ZNEAR_CM, ZFAR_CM
        self._scene_c = self._new(d.scenes, "colour")
        self._scene_i = self._new(d.scenes, "ids")
        for scene, extra in ((self._scene_c, self._colour_only), (self._scene_i, self._ids_only)):
            scene.collection.children.link(self._shared)
            scene.collection.children.link(extra)
            scene.collection.objects.link(self._cam)
            scene.camera = self._cam
            r = scene.render
            r.resolution_x = r.resolution_y = self.size
            r.resolution_percentage = 100
            r.pixel_aspect_x = r.pixel_aspect_y = 1.0
            r.use_compositing = r.use_sequencer = False
            r.dither_intensity = 0.0
            scene.view_settings.view_transform = "Standard"
            scene.view_settings.look = "None"
            scene.view_settings.exposure, scene.view_settings.gamma = 0.0, 1.0
        self._setup_colour_scene()
        self._setup_id_scene()
        self._world = self._new(d.worlds, "world")
        self._world_bg = _world_nodes(self._world)
        self._scene_c.world = self._world
        self._built = True

    def _setup_colour_scene(self) -> None:
        sc = self._scene_c
        sc.render.engine = ENGINES[self.engine]
        sc.render.film_transparent = True
        sc.render.use_persistent_data = True
        sc.render.threads_mode = "FIXED" if self.threads else "AUTO"
        if self.threads:
            sc.render.threads = self.threads
        im = sc.render.image_settings
        im.file_format, im.color_mode, im.color_depth, im.exr_codec = "OPEN_EXR", "RGBA", "32", "NONE"
        if self.engine == "cycles":
            c = sc.cycles
            c.device, c.samples = "CPU", self.samples
            c.use_adaptive_sampling, c.adaptive_threshold = self.adaptive_sampling, self.adaptive_threshold
            c.adaptive_min_samples = 0
            c.use_denoising = self.denoise
            if self.denoise:
                c.denoiser, c.denoising_input_passes = "OPENIMAGEDENOISE", "RGB_ALBEDO_NORMAL"
                c.denoising_prefilter, c.denoising_quality = "ACCURATE", "HIGH"
            c.use_animated_seed = False
            c.max_bounces, c.diffuse_bounces, c.glossy_bounces = self.max_bounces, 3, 3
            c.transmission_bounces, c.transparent_max_bounces, c.volume_bounces = 4, 16, 0
            c.caustics_reflective = c.caustics_refractive = False
            c.sample_clamp_indirect = 5.0
            c.pixel_filter_type, c.filter_width = "BLACKMAN_HARRIS", self.filter_width
        else:
            sc.eevee.taa_render_samples = self.samples
            sc.eevee.use_shadows = True

    def _setup_id_scene(self) -> None:
        sc = self._scene_i
        sc.render.engine = "BLENDER_WORKBENCH"
        sc.render.film_transparent = False
        sc.display.render_aa = "OFF"
        sh = sc.display.shading
        sh.light, sh.color_type = "FLAT", "VERTEX"
        sh.show_backface_culling = True
        sh.show_cavity = sh.show_object_outline = sh.show_shadows = sh.show_xray = False
        sh.show_specular_highlight = sh.use_dof = False
        sc.view_settings.view_transform = "Raw"          # ids pass through unchanged
        im = sc.render.image_settings
        im.file_format, im.color_mode, im.color_depth, im.compression = "PNG", "RGB", "8", 0

    # ------------------------------------------------------------------ per sample
    def _sync(self, geom: SceneGeometry) -> None:
        parts = geom.parts
        offsets = id_offsets(parts)
        seen = set()
        for group in mesh_groups(parts):
            key = tuple(parts[i].name for i in group)
            seen.add(key)
            slot = self._slots.get(key)
            if slot is None or not _same_topology(slot, [parts[i] for i in group]):
                if slot is not None:
                    self._drop(slot)
                slot = self._slots[key] = self._make_slot(key, [parts[i] for i in group], geom)
            self._update_slot(slot, [parts[i] for i in group], [offsets[i] for i in group], geom)
        for key in [k for k in self._slots if k not in seen]:
            self._drop(self._slots.pop(key))
        self._sync_camera(geom)
        self._sync_lights(geom)
        if any(p.texture == "face" for p in parts):
            self._upload_face_texture(geom)
        self._world_bg.default_value = (*[float(geom.spec.ambient)] * 3, 1.0)
        if self.engine == "cycles":
            self._scene_c.cycles.seed = cycles_seed(geom.spec)

    def _make_slot(self, key, plist, geom) -> _Slot:
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
        slot = _Slot(key, obj, mesh, [np.array(p.triangles, copy=True) for p in plist], nverts, layouts,
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

    def _update_slot(self, slot: _Slot, plist, offsets, geom) -> None:
        mesh, obj = slot.mesh, slot.obj
        frame = geom.frames[plist[0].node]
        obj.matrix_world = _matrix(frame)
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
            bobj.matrix_world = _matrix(geom.frames[plist[k].node])
        for k, (cobj, cmesh, lift) in slot.cornea.items():
            p = plist[k]
            cobj.hide_render = photo is not None     # the photo pass has no cornea
            cmesh.vertices.foreach_set("co", (p.vertices + p.normals * lift[:, None]).astype(np.float32).ravel())
            cmesh.update()
            cobj.matrix_world = _matrix(geom.frames[p.node])

    def _material_index(self, slot: _Slot, plist, geom, drawn: np.ndarray) -> np.ndarray:
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

    def _skin_shape_keys(self, slot: _Slot, plist, geom) -> bool:
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

    def _drop(self, slot: _Slot) -> None:
        blocks = [slot.obj, slot.mesh]
        for pair in (*slot.back.values(), *slot.cornea.values()):
            blocks += list(pair[:2])
        blocks += [m for m, _ in slot.materials]
        bpy.data.batch_remove(blocks)
        gone = {id(b) for b in blocks}
        self._datablocks = [b for b in self._datablocks if id(b) not in gone]

    def _sync_camera(self, geom: SceneGeometry) -> None:
        bc = blender_camera(geom.camera)
        cd = self._cam_data
        cd.lens, cd.sensor_width = bc.lens_mm, bc.sensor_width_mm
        cd.shift_x, cd.shift_y = bc.shift_x, bc.shift_y
        self._cam.matrix_world = _matrix(geom.camera.pose)

    def _sync_lights(self, geom: SceneGeometry) -> None:
        suns = [l for l in geom.spec.lights if l.get("kind", "directional") == "directional"]
        points = [l for l in geom.spec.lights if l.get("kind") == "point"]
        for pool, specs, kind in ((self._suns, suns, "SUN"), (self._points, points, "POINT")):
            while len(pool) < len(specs):
                data = self._new(bpy.data.lights, f"{kind.lower()}{len(pool)}", kind)
                obj = self._new(bpy.data.objects, f"{kind.lower()}{len(pool)}", data)
                self._scene_c.collection.objects.link(obj)
                pool.append((obj, data))
            for k, (obj, data) in enumerate(pool):
                obj.hide_render = k >= len(specs)
                if k >= len(specs):
                    continue
                s = specs[k]
                data.color = tuple(float(c) for c in compose.kelvin_rgb(s["kelvin"]))
                m = np.eye(4)
                m[:3, :3] = light_rotation(s["azimuth"], s["elevation"])
                if kind == "SUN":
                    data.energy = float(s["intensity"])          # irradiance, as pyrender's lux-like units
                    data.angle = np.radians(SUN_ANGLE_DEG)
                else:
                    pos = _point_position(s, geom)
                    m[:3, 3] = pos
                    # pyrender: irradiance I / d^2; a Blender point lamp of power P gives
                    # P / (4 pi d^2) (measured with Cycles on a white diffuse plane)
                    data.energy = float(s["intensity"]) * 4 * np.pi
                    data.shadow_soft_size = POINT_RADIUS_CM
                obj.matrix_world = _matrix(m)

    # ------------------------------------------------------------------ materials
    def _culled_material(self):
        if self._culled_mat is None:
            self._culled_mat = mats.culled_material(self._new, self.engine)
        return self._culled_mat

    def _cornea_material(self):
        if self._cornea_mat is None:
            self._cornea_mat = mats.cornea_material(self._new, self.engine)
        return self._cornea_mat

    def _face_texture(self, geom: SceneGeometry):
        h, w = np.asarray(geom.face_texture).shape[:2]
        self._face_image = mats.face_image(self._new, self._face_image, w, h)
        return self._face_image

    def _upload_face_texture(self, geom: SceneGeometry) -> None:
        mats.upload_texture(self._face_texture(geom), np.asarray(geom.face_texture))

    def _material(self, part, geom):
        image = self._face_texture(geom) if part.texture == "face" else None
        return mats.part_material(self._new, part, image, self.engine, self.subsurface)

    # ------------------------------------------------------------------ passes
    def _colour_pass(self, geom: SceneGeometry) -> np.ndarray:
        """Linear premultiplied RGBA (H, W, 4) float32, top row first."""
        path = os.path.join(self.workdir, "colour.exr")
        self._render(self._scene_c, path)
        img = bpy.data.images.load(path, check_existing=False)
        try:
            w, h = img.size
            px = np.empty(w * h * 4, np.float32)
            img.pixels.foreach_get(px)
        finally:
            bpy.data.images.remove(img)
        rgba = px.reshape(h, w, 4)[::-1]
        return np.clip(np.nan_to_num(rgba), 0.0, None)

    def _id_pass(self, hidden=()) -> np.ndarray:
        """Triangle ids (H, W) int64, 0 = background, with ``hidden`` objects left out."""
        path = os.path.join(self.workdir, "ids.png")
        for obj in hidden:
            obj.hide_render = True
        try:
            self._render(self._scene_i, path)
        finally:
            for obj in hidden:
                obj.hide_render = False
        with Image.open(path) as im:
            return decode_ids(np.asarray(im.convert("RGB")))

    def _objects_by_part(self, geom: SceneGeometry):
        """(Blender object, part) pairs: a part's own object and its id-only back faces.

        Objects shared by several parts (the skin: face + head) are never left out of a pass.
        """
        by_name = {p.name: p for p in geom.parts}
        for slot in self._slots.values():
            plist = [by_name[n] for n in slot.names]
            for k, p in enumerate(plist):
                if len(plist) == 1:
                    yield slot.obj, p
                if k in slot.back:
                    yield slot.back[k][0], p

    def _render(self, scene, path: str) -> None:
        scene.render.filepath = path
        with _quiet(not self.verbose, self.workdir) as log:
            try:
                bpy.ops.render.render(write_still=True, scene=scene.name)
            except RuntimeError as exc:
                raise RuntimeError(f"Blender render of {scene.name} failed: {exc}\n{log()}") from exc
        if not os.path.isfile(path):
            raise RuntimeError(f"Blender wrote no image to {path}")


# ---------------------------------------------------------------------------- helpers
_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)


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


def _check_photo_holes(geom, ids: np.ndarray, alpha: np.ndarray) -> tuple[float, float]:
    """The photo pipeline's guard, as in pyrender's photo pass: a sample showing untextured
    or inpainted face regions raises :class:`PhotoHoleError` (the batch logs and skips it)."""
    from synth.identity import photo_scene

    # pyrender's photo pass owns the switch tests use to look at what the guard catches
    layer_mod = sys.modules.get("synth.render.photo_layer")
    holes, fill = photo_scene.hole_fractions(geom, ids, alpha)
    if getattr(layer_mod, "CHECK_HOLES", True) and (holes > photo_scene.HOLE_LIMIT or fill > photo_scene.OUTSIDE_LIMIT):
        raise photo_scene.PhotoHoleError(
            f"photo identity {geom.photo.key}: {holes:.1%} of the image untextured or inpainted, "
            f"{fill:.1%} outside the photo (pose {geom.spec.pose})")
    return holes, fill


def _matrix(m: np.ndarray):
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


def _same_topology(slot: _Slot, plist) -> bool:
    return (len(plist) == len(slot.tris) and len(plist[0].vertices) == slot.nverts
            and all(np.array_equal(a, b.triangles) for a, b in zip(slot.tris, plist)))


def _point_position(spec: dict, geom: SceneGeometry) -> np.ndarray:
    """World position of a point lamp: ``distance_cm`` from the world origin along the light
    direction (azimuth/elevation as for the directional lights), as in the pyrender backend."""
    return float(spec["distance_cm"]) * compose.light_direction(spec["azimuth"], spec["elevation"])


@contextlib.contextmanager
def _quiet(enabled: bool, workdir: str):
    """Send Blender's C-level stdout/stderr to a log file while rendering."""
    if not enabled:
        yield lambda: ""
        return
    path = os.path.join(workdir, "blender.log")
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "w") as fh:
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        try:
            yield lambda: open(path).read()[-4000:]
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
