"""pyrender offscreen backend (the fast default): headless EGL on Mesa llvmpipe.

Two passes per sample, one GL context per process:
1. colour: PBR shading at ``k`` x the output size (k = 2 for ``ssaa2``), MSAA off, RGBA
   with a transparent background, then box-filtered and composited over the background
   in linear light (:func:`synth.render.compose.composite`);
2. ids: every triangle flat-coloured with its 24-bit id at the output size, no
   antialiasing, which gives depth and all pixel labels (:mod:`synth.render.labels`).
"""

from __future__ import annotations

import os

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

import numpy as np  # noqa: E402
import pyrender  # noqa: E402
from OpenGL import GL  # noqa: E402

from synth.render import compose  # noqa: E402
from synth.render.labels import decode_ids, id_colors, pixel_labels  # noqa: E402
from synth.scene import SceneGeometry  # noqa: E402

_SAMPLES = {"msaa4": 4, "none": 0, "ssaa2": 0}
_SUPERSAMPLE = {"msaa4": 1, "none": 1, "ssaa2": 2}
_NO_DEPTH = 1 << 24   # our flag: the colour pass does not need pyrender's depth readback


def _set_msaa(samples: int) -> None:
    """pyrender hard-codes 4x MSAA; route its renderbuffer calls through our sample count.

    MSAA on llvmpipe costs ~2x; with ``samples=0`` the id pass is exact (no blended ids).
    """
    import pyrender.renderer as prr

    def storage(target, _samples, fmt, w, h):
        GL.glRenderbufferStorageMultisample(target, samples, fmt, w, h)

    prr.glRenderbufferStorageMultisample = storage
    if not getattr(prr.Renderer, "_ausynth_patched", False):
        original = prr.Renderer._read_main_framebuffer

        def read(self, scene, flags):
            if not flags & _NO_DEPTH:
                return original(self, scene, flags)
            w, h = self._main_fb_dims
            prr.glBindFramebuffer(prr.GL_READ_FRAMEBUFFER, self._main_fb_ms)
            prr.glBindFramebuffer(prr.GL_DRAW_FRAMEBUFFER, self._main_fb)
            prr.glBlitFramebuffer(0, 0, w, h, 0, 0, w, h, prr.GL_COLOR_BUFFER_BIT, prr.GL_LINEAR)
            prr.glBindFramebuffer(prr.GL_READ_FRAMEBUFFER, self._main_fb)
            buf = prr.glReadPixels(0, 0, w, h, prr.GL_RGBA, prr.GL_UNSIGNED_BYTE)
            return np.flip(np.frombuffer(buf, np.uint8).reshape(h, w, 4), axis=0), None

        prr.Renderer._read_main_framebuffer = read
        prr.Renderer._ausynth_patched = True


class PyrenderRenderer:
    """Renders :class:`SceneGeometry` to the arrays documented in :meth:`render`."""

    name = "pyrender"

    def __init__(self, size: int, antialias: str = "ssaa2", shadows: bool = False):
        if antialias not in _SAMPLES:
            raise ValueError(f"antialias must be one of {sorted(_SAMPLES)}, got {antialias!r}")
        self.size, self.k, self.samples = size, _SUPERSAMPLE[antialias], _SAMPLES[antialias]
        self.shadows = shadows
        _set_msaa(self.samples)
        try:
            self._gl = pyrender.OffscreenRenderer(size * self.k, size * self.k)
        except Exception as exc:  # missing EGL/Mesa gives many exception types
            raise RuntimeError(
                "pyrender could not create a headless OpenGL context. Install the system packages "
                "(Debian/Ubuntu: libegl1 libegl-mesa0 libgl1-mesa-dri libgbm1, or run scripts/setup.sh) "
                f"and keep PYOPENGL_PLATFORM=egl. Cause: {exc}") from exc
        self._materials: dict = {}
        # id-pass materials: sidedness must match the colour pass part by part
        self._flat = {ds: pyrender.MetallicRoughnessMaterial(baseColorFactor=[1.0, 1.0, 1.0, 1.0], doubleSided=ds)
                      for ds in (False, True)}
        # Persistent scenes: camera and light nodes are reused and moved with set_pose
        # (building pyrender nodes from matrices is a large share of per-frame cost).
        self._scenes = {name: _PersistentScene() for name in ("color", "id")}

    def close(self) -> None:
        """Free this renderer's GL objects and context, but not the EGL display: EGL hands
        every context of a process the same display, and pyrender's ``delete()`` would
        ``eglTerminate`` it under every other live renderer (and Blender's label pass)."""
        gl = self._gl
        if gl is None or gl._platform is None:
            return
        from OpenGL.EGL import eglDestroyContext

        platform = gl._platform
        platform.make_current()
        gl._renderer.delete()
        if getattr(platform, "_egl_context", None) is not None:
            eglDestroyContext(platform._egl_display, platform._egl_context)
            platform._egl_context = None
        if hasattr(platform, "_egl_display"):
            platform._egl_display = None   # else the platform's __del__ eglTerminates the shared display
        gl._renderer = gl._platform = None
        self._gl = None

    def __del__(self) -> None:
        # runs before the OffscreenRenderer's own __del__, whose delete() would terminate
        # the shared display; after close() that delete() finds nothing to free
        try:
            self.close()
        except Exception:
            pass

    def render(self, geom: SceneGeometry) -> dict[str, np.ndarray]:
        """Render one scene.

        Returns ``rgb`` (H, W, 3) uint8 sRGB plus the labels of
        :func:`synth.render.labels.pixel_labels` (seg, face_mask, au_regions, depth,
        landmarks_2d/3d, landmark_visible, landmarks68_2d, face_box).
        """
        if getattr(geom, "photo", None) is not None:  # photo identity: over its own warped backdrop
            from synth.render.photo_layer import render_photo

            rgb = render_photo(self, geom)
        else:
            rgba = self._color_pass(geom)
            bg = compose.background(geom.spec.background, self.size)
            rgb = compose.composite(rgba, bg, self.k)
        ids, depth = self._id_pass(geom)
        # occluders: a second id pass without them tells what they hide
        clear = self._id_pass(geom, occluders=False)[0] if any(p.instance for p in geom.parts) else None
        return {"rgb": rgb, **pixel_labels(geom, ids, depth, clear)}

    # ------------------------------------------------------------------ passes
    def _color_pass(self, geom: SceneGeometry) -> np.ndarray:
        sc = self._scenes["color"]
        sc.scene.ambient_light = np.full(3, geom.spec.ambient)
        prims = [pyrender.Primitive(positions=v, normals=n, indices=t, color_0=c, texcoord_0=uv,
                                    material=self._material(key, geom))
                 for key, (v, n, t, c, uv) in _merged(geom).items()]
        sc.set_mesh(pyrender.Mesh(prims))
        sc.set_lights(geom.spec.lights)
        sc.set_camera(geom.camera.scaled(self.k))
        self._resize(self.size * self.k)
        flags = pyrender.RenderFlags.RGBA | _NO_DEPTH
        if self.shadows:
            flags |= pyrender.RenderFlags.SHADOWS_DIRECTIONAL
        color, _ = self._gl.render(sc.scene, flags=flags)
        return color

    def _id_pass(self, geom: SceneGeometry, occluders: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Flat triangle ids and depth. See-through parts (alpha < 0.5, clear lenses) are
        not drawn, so they neither occlude nor hide landmarks."""
        sc = self._scenes["id"]
        pos: dict[bool, list] = {False: [], True: []}
        col: dict[bool, list] = {False: [], True: []}
        offset = 0
        for part in geom.parts:
            if part.alpha < 0.5 or (part.instance and not occluders):
                offset += len(part.triangles)   # ids stay stable whatever is skipped
                continue
            m = geom.frames[part.node]
            v = part.vertices[part.triangles].reshape(-1, 3) @ m[:3, :3].T + m[:3, 3]
            pos[part.double_sided].append(v.astype(np.float32))
            col[part.double_sided].append(np.repeat(id_colors(len(part.triangles), offset), 3, axis=0))
            offset += len(part.triangles)
        prims = [pyrender.Primitive(positions=np.concatenate(pos[ds]), color_0=np.concatenate(col[ds]),
                                    material=self._flat[ds]) for ds in (False, True) if pos[ds]]
        sc.set_mesh(pyrender.Mesh(prims))
        sc.set_camera(geom.camera)
        self._resize(self.size)
        rgb, depth = self._gl.render(sc.scene, flags=pyrender.RenderFlags.FLAT)
        return decode_ids(rgb), depth

    def _resize(self, side: int) -> None:
        if self._gl.viewport_width != side:
            self._gl.viewport_width = self._gl.viewport_height = side

    def _material(self, key: tuple, geom: SceneGeometry) -> pyrender.Material:
        texture, roughness, metallic, alpha, double_sided = key
        opts = dict(baseColorFactor=[1.0, 1.0, 1.0, float(alpha)], metallicFactor=float(metallic),
                    roughnessFactor=float(roughness), doubleSided=bool(double_sided),
                    alphaMode="BLEND" if alpha < 1.0 else "OPAQUE")
        if texture:
            tex = geom.face_texture
            mkey = ("face", id(tex), key)
            if tex is geom.identity.texture and mkey in self._materials:
                return self._materials[mkey]
            mat = pyrender.MetallicRoughnessMaterial(
                baseColorTexture=pyrender.Texture(source=tex, source_channels="RGB"), **opts)
            if tex is geom.identity.texture:  # wrinkled textures change every frame: not cached
                if len(self._materials) > 64:
                    self._materials.clear()
                self._materials[mkey] = mat
            return mat
        mkey = ("plain", key)
        if mkey not in self._materials:
            self._materials[mkey] = pyrender.MetallicRoughnessMaterial(**opts)
        return self._materials[mkey]


class _PersistentScene:
    """A pyrender scene whose camera and light nodes live across frames."""

    def __init__(self):
        self.scene = pyrender.Scene(bg_color=[0.0, 0.0, 0.0, 0.0], ambient_light=np.zeros(3))
        self.camera = pyrender.IntrinsicsCamera(1.0, 1.0, 0.0, 0.0, znear=5.0, zfar=2000.0)
        self.camera_node = self.scene.add(self.camera, pose=np.eye(4))
        self.lights: dict[str, list[tuple[pyrender.Light, pyrender.Node]]] = {}
        self.mesh_node: pyrender.Node | None = None

    def set_mesh(self, mesh: pyrender.Mesh) -> None:
        if self.mesh_node is not None:
            self.scene.remove_node(self.mesh_node)
        self.mesh_node = self.scene.add(mesh)

    def set_camera(self, cam) -> None:
        self.camera.fx, self.camera.fy, self.camera.cx, self.camera.cy = cam.fx, cam.fy, cam.cx, cam.cy
        self.scene.set_pose(self.camera_node, cam.pose)

    def set_lights(self, lights) -> None:
        for kind, cls in (("directional", pyrender.DirectionalLight), ("point", pyrender.PointLight)):
            wanted = [light for light in lights if light["kind"] == kind]
            pool = self.lights.setdefault(kind, [])
            while len(pool) < len(wanted):
                light = cls(color=np.ones(3), intensity=0.0)
                pool.append((light, self.scene.add(light, pose=np.eye(4))))
            for k, (light, node) in enumerate(pool):
                if k >= len(wanted):
                    light.intensity = 0.0
                    continue
                spec = wanted[k]
                light.color = compose.kelvin_rgb(spec["kelvin"])
                light.intensity = spec["intensity"]
                pose = _light_pose(spec["azimuth"], spec["elevation"])
                if kind == "point":
                    pose[:3, 3] = compose.light_direction(spec["azimuth"], spec["elevation"]) * spec["distance_cm"]
                self.scene.set_pose(node, pose)


def _light_pose(azimuth: float, elevation: float) -> np.ndarray:
    """Pose whose -z axis (pyrender's light direction) points from the light to the subject."""
    z = compose.light_direction(azimuth, elevation)
    x = np.cross([0.0, 1.0, 0.0], z)
    x = x / np.linalg.norm(x) if np.linalg.norm(x) > 1e-6 else np.array([1.0, 0.0, 0.0])
    pose = np.eye(4)
    pose[:3, :3] = np.stack([x, np.cross(z, x), z], 1)
    return pose


def _merged(geom: SceneGeometry) -> dict[tuple, tuple]:
    """Parts grouped by material, in world space: fewer draw calls and primitive uploads.

    Returns ``{(texture, roughness, metallic, alpha, double_sided): (positions, normals,
    indices, colors, uv)}``.
    """
    groups: dict[tuple, list] = {}
    for p in geom.parts:
        groups.setdefault((p.texture, p.roughness, p.metallic, p.alpha, p.double_sided), []).append(p)
    out = {}
    for key, plist in groups.items():
        pos, nrm, idx, col, uv, base = [], [], [], [], [], 0
        for p in plist:
            m = geom.frames[p.node]
            pos.append(p.vertices @ m[:3, :3].T + m[:3, 3])
            nrm.append(p.normals @ m[:3, :3].T)
            idx.append(p.triangles + base)
            if p.colors is not None:
                col.append(p.colors)
            if p.uv is not None:
                uv.append(p.uv)
            base += len(p.vertices)
        out[key] = (np.concatenate(pos).astype(np.float32), np.concatenate(nrm).astype(np.float32),
                    np.concatenate(idx).astype(np.uint32),
                    np.concatenate(col).astype(np.float32) if col else None,
                    np.concatenate(uv).astype(np.float32) if uv else None)
    return out
