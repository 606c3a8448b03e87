"""Blender (``bpy``) backend: Cycles or EEVEE colour, a Workbench id pass, shared labels.

With :mod:`synth.render.blender_materials` (its shader graphs) and :mod:`synth.render.blender_meshes`
(its meshes), the only modules that import ``bpy`` (``pip install 'ausynth[blender]'``).

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

import bpy
import numpy as np
from PIL import Image

from synth.identity.paint import to_srgb8
from synth.render import blender_materials as mats
from synth.render import compose
from synth.render.blender_materials import SUBSURFACE, world_colour_socket as _world_nodes
from synth.render.blender_meshes import MeshSlots, Slot, same_topology, to_matrix
from synth.render.blender_params import blender_camera, cycles_seed, depth_from_ids, id_offsets, light_rotation, mesh_groups
from synth.render.labels import decode_ids, pixel_labels
from synth.scene import SceneGeometry

ENGINES = {"cycles": "CYCLES", "eevee": "BLENDER_EEVEE"}
SUN_ANGLE_DEG = 2.0              # apparent size of the sun lamps: soft shadow edges, visible catchlights
POINT_RADIUS_CM = 2.0
ZNEAR_CM, ZFAR_CM = 5.0, 2000.0  # clipping planes of pyrender's camera
_instances = itertools.count()


class BlenderRenderer(MeshSlots):
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
        self._slots: dict[tuple[str, ...], Slot] = {}
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
            if slot is None or not same_topology(slot, [parts[i] for i in group]):
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

    def _sync_camera(self, geom: SceneGeometry) -> None:
        bc = blender_camera(geom.camera)
        cd = self._cam_data
        cd.lens, cd.sensor_width = bc.lens_mm, bc.sensor_width_mm
        cd.shift_x, cd.shift_y = bc.shift_x, bc.shift_y
        self._cam.matrix_world = to_matrix(geom.camera.pose)

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
                obj.matrix_world = to_matrix(m)

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
