"""Colour pass for photo identities (pyrender): flat texture x shading, feathered alpha,
composited over the identity's warped photo backdrop in linear light.

Called by :class:`synth.render.pyrender_backend.PyrenderRenderer` when a scene carries a
``photo`` layer (:class:`synth.identity.photo_scene.PhotoSceneGeometry`). It reuses the
renderer's GL context, with its own persistent scene. Flat shading: pyrender's flat shader
outputs ``texture x vertex colour`` (rgba) unchanged, so the vertex alpha (the face's
opacity ramp) arrives in the framebuffer unpremultiplied and is premultiplied here before
the supersampling box filter (no dark fringes).
"""

from __future__ import annotations

import numpy as np
import pyrender

from synth.identity.paint import to_srgb8
from synth.identity.photo_scene import HOLE_LIMIT, OUTSIDE_LIMIT, PhotoHoleError, hole_fractions
from synth.render.compose import SRGB8_TO_LINEAR, box_downsample

CHECK_HOLES = True    # tests and debugging may turn the guard off to look at what it catches
_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)


class PhotoColorPass:
    """Per-renderer state: a pyrender scene and a small cache of photo textures."""

    def __init__(self):
        self.scene = pyrender.Scene(bg_color=[0.0, 0.0, 0.0, 0.0], ambient_light=np.zeros(3))
        self.camera = pyrender.IntrinsicsCamera(1.0, 1.0, 0.0, 0.0, znear=5.0, zfar=2000.0)
        self.camera_node = self.scene.add(self.camera, pose=np.eye(4))
        self.mesh_node = None
        self._plain = pyrender.MetallicRoughnessMaterial(baseColorFactor=[1.0, 1.0, 1.0, 1.0])
        self._textures: dict[int, tuple[np.ndarray, pyrender.Texture]] = {}

    def texture(self, image: np.ndarray) -> pyrender.Texture:
        hit = self._textures.get(id(image))
        if hit is None or hit[0] is not image:
            if len(self._textures) > 32:
                self._textures.clear()
            hit = self._textures[id(image)] = (image, pyrender.Texture(source=image, source_channels="RGB"))
        return hit[1]

    def render(self, renderer, geom) -> np.ndarray:
        """RGBA uint8 at the renderer's supersampled size."""
        layer = geom.photo
        prims = []
        for p in geom.parts:
            if p.name not in layer.colors:
                continue
            m = geom.frames[p.node]
            pos = (p.vertices @ m[:3, :3].T + m[:3, 3]).astype(np.float32)
            if p.texture:
                mat = pyrender.MetallicRoughnessMaterial(baseColorTexture=self.texture(geom.face_texture),
                                                         baseColorFactor=[1.0, 1.0, 1.0, 1.0])
                prims.append(pyrender.Primitive(positions=pos, indices=p.triangles.astype(np.uint32),
                                                texcoord_0=p.uv.astype(np.float32),
                                                color_0=layer.colors[p.name], material=mat))
            else:
                prims.append(pyrender.Primitive(positions=pos, indices=p.triangles.astype(np.uint32),
                                                color_0=layer.colors[p.name], material=self._plain))
        if self.mesh_node is not None:
            self.scene.remove_node(self.mesh_node)
        self.mesh_node = self.scene.add(pyrender.Mesh(prims))
        cam = geom.camera.scaled(renderer.k)
        self.camera.fx, self.camera.fy, self.camera.cx, self.camera.cy = cam.fx, cam.fy, cam.cx, cam.cy
        self.scene.set_pose(self.camera_node, cam.pose)
        renderer._resize(renderer.size * renderer.k)
        flags = pyrender.RenderFlags.RGBA | pyrender.RenderFlags.FLAT
        color, _ = renderer._gl.render(self.scene, flags=flags)
        return color


def render_photo(renderer, geom) -> np.ndarray:
    """Final uint8 RGB of a photo-identity scene; raises :class:`PhotoHoleError` when the
    sample would show holes (untextured face, exposed inpainted face)."""
    state = getattr(renderer, "_photo_pass", None)
    if state is None:
        state = renderer._photo_pass = PhotoColorPass()
    rgba = state.render(renderer, geom)
    layer = geom.photo
    lin = SRGB8_TO_LINEAR[rgba[..., :3]]
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    pre = box_downsample(lin * alpha, renderer.k)
    a = box_downsample(alpha, renderer.k)
    out = pre + (1.0 - a) * layer.backdrop
    if layer.grayscale:
        out = np.repeat((out @ _LUMA)[..., None], 3, axis=2)
    ids, _ = renderer._id_pass(geom)
    holes, fill = hole_fractions(geom, ids, a[..., 0])
    renderer.last_photo_holes = (holes, fill)
    if CHECK_HOLES and (holes > HOLE_LIMIT or fill > OUTSIDE_LIMIT):
        raise PhotoHoleError(f"photo identity {layer.key}: {holes:.1%} of the image untextured or "
                             f"inpainted, {fill:.1%} outside the photo (pose {geom.spec.pose})")
    return to_srgb8(out)
