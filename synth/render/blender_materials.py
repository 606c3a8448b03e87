"""Blender shader graphs of the Blender backend (:mod:`synth.render.blender_backend`).

Functions, not methods: each builds or edits one datablock. ``new(collection, name, ...)``
is the renderer's datablock factory (it prefixes names and remembers the block so the
renderer can free it). Colours come per corner from the ``Col`` attribute, the face
texture from the ``UVMap`` layer; everything here is in Blender's linear colour space.
"""

from __future__ import annotations

from typing import Callable

import bpy
import numpy as np

from synth.rig import SEG_CLASSES

SUBSURFACE = {"random_walk": "RANDOM_WALK", "burley": "BURLEY", "none": None}
SKIN_SSS_SCALE_CM = 0.12         # mean free path of red light in skin ~1 mm (green, blue shorter)
CORNEA_IOR = 1.376

NewBlock = Callable[..., object]


def node_tree(mat):
    if mat.node_tree is None:
        mat.use_nodes = True
    return mat.node_tree


def empty_material(new: NewBlock, name: str):
    """A new material with a cleared node tree and its output node:
    ``(material, nodes, links, output node)``."""
    mat = new(bpy.data.materials, name)
    tree = node_tree(mat)
    tree.nodes.clear()
    return mat, tree.nodes, tree.links, tree.nodes.new("ShaderNodeOutputMaterial")


def world_colour_socket(world):
    """The world's background colour input (strength fixed at 1)."""
    tree = world.node_tree
    if tree is None:
        world.use_nodes = True
        tree = world.node_tree
    bg = next(n for n in tree.nodes if n.type == "BACKGROUND")
    bg.inputs["Strength"].default_value = 1.0
    return bg.inputs["Color"]


def set_input(node, name: str, value) -> None:
    """Set an input's default value, only when it changes (an edit re-syncs the shader)."""
    if name not in node.inputs:
        return
    socket = node.inputs[name]
    current = socket.default_value
    if np.allclose(np.asarray(current if np.ndim(value) == 0 else tuple(current), float), value, rtol=0, atol=1e-7):
        return
    socket.default_value = value


def set_surface(bsdf, part) -> None:
    """Per-sample surface values of a part (roughness, metallic, alpha)."""
    set_input(bsdf, "Roughness", float(part.roughness))
    set_input(bsdf, "Metallic", float(getattr(part, "metallic", 0.0)))
    set_input(bsdf, "Alpha", float(getattr(part, "alpha", 1.0)))


def _blend_mode(mat, engine: str, mode: str) -> None:
    if engine == "eevee" and hasattr(mat, "surface_render_method"):
        mat.surface_render_method = mode


def culled_material(new: NewBlock, engine: str):
    """Fully transparent: the inside-out shells a view sees from behind."""
    mat, nodes, links, out = empty_material(new, "culled")
    clear = nodes.new("ShaderNodeBsdfTransparent")
    links.new(clear.outputs[0], out.inputs["Surface"])
    _blend_mode(mat, engine, "BLENDED")
    return mat


def cornea_material(new: NewBlock, engine: str):
    """The wet cornea: Fresnel mix of clear and a sharp gloss (the eye's catchlight)."""
    mat, n, links, out = empty_material(new, "cornea")
    mix = n.new("ShaderNodeMixShader")
    fres = n.new("ShaderNodeFresnel")
    fres.inputs["IOR"].default_value = CORNEA_IOR
    clear = n.new("ShaderNodeBsdfTransparent")
    gloss = n.new("ShaderNodeBsdfGlossy")
    gloss.inputs["Roughness"].default_value = 0.04
    links.new(fres.outputs["Fac"], mix.inputs[0])
    links.new(clear.outputs[0], mix.inputs[1])
    links.new(gloss.outputs[0], mix.inputs[2])
    links.new(mix.outputs[0], out.inputs["Surface"])
    _blend_mode(mat, engine, "BLENDED")
    return mat


def face_image(new: NewBlock, img, w: int, h: int):
    """The (reused) sRGB image holding the face texture, ``w`` x ``h``."""
    if img is None:
        img = new(bpy.data.images, "face_texture", w, h, alpha=False, float_buffer=False)
        img.colorspace_settings.name = "sRGB"
    elif tuple(img.size) != (w, h):
        img.scale(w, h)
    return img


def upload_texture(img, tex: np.ndarray) -> None:
    """Copy a uint8 (H, W, 3) sRGB texture, top row first, into ``img``."""
    h, w = tex.shape[:2]
    rgba = np.ones((h, w, 4), np.float32)
    rgba[..., :3] = tex[::-1] / 255.0                  # Blender images start at the bottom row
    img.pixels.foreach_set(rgba.ravel())
    img.update()


def part_material(new: NewBlock, part, image, engine: str, subsurface: str):
    """Principled material of one part -> ``(material, principled node)``. ``image``: the
    face texture when the part is textured. A ``photo`` mix node switches per sample to
    the flat photo shading of photo identities."""
    mat, nodes, links, out = empty_material(new, part.name)
    bsdf = nodes.new("ShaderNodeBsdfPrincipled")
    attr = nodes.new("ShaderNodeAttribute")
    attr.attribute_name = "Col"
    flat_colour = _base_colour(nodes, links, attr, bsdf, image if part.texture == "face" else None)
    # Photo identities (synth.identity.photo_scene): the photo carries its own light, so
    # the part is drawn flat like pyrender's photo pass: colour (x texture) as emission,
    # the vertex alpha (the face's opacity ramp) as coverage. `photo` switches per sample;
    # a constant mix factor is folded away by Cycles.
    emit = nodes.new("ShaderNodeEmission")
    links.new(flat_colour, emit.inputs["Color"])
    cover = nodes.new("ShaderNodeMixShader")
    links.new(attr.outputs["Alpha"], cover.inputs[0])
    links.new(nodes.new("ShaderNodeBsdfTransparent").outputs[0], cover.inputs[1])
    links.new(emit.outputs[0], cover.inputs[2])
    photo = nodes.new("ShaderNodeMixShader")
    photo.name = "photo"
    photo.inputs[0].default_value = 0.0
    links.new(bsdf.outputs["BSDF"], photo.inputs[1])
    links.new(cover.outputs[0], photo.inputs[2])
    links.new(photo.outputs[0], out.inputs["Surface"])
    _scattering(bsdf, links, attr, part, subsurface)
    _blend_mode(mat, engine, "DITHERED")
    return mat, bsdf


def _base_colour(nodes, links, attr, bsdf, image):
    """Wire the base colour (vertex colour, x texture when ``image``); return the socket
    of the flat colour the photo shading uses."""
    if image is None:
        links.new(attr.outputs["Color"], bsdf.inputs["Base Color"])
        return attr.outputs["Color"]
    tex = nodes.new("ShaderNodeTexImage")
    tex.image = image
    tex.interpolation = "Cubic"
    uvn = nodes.new("ShaderNodeUVMap")
    uvn.uv_map = "UVMap"
    links.new(uvn.outputs["UV"], tex.inputs["Vector"])
    links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
    mix = nodes.new("ShaderNodeMix")
    mix.data_type, mix.blend_type = "RGBA", "MULTIPLY"
    mix.inputs["Factor"].default_value = 1.0
    links.new(tex.outputs["Color"], mix.inputs["A"])
    links.new(attr.outputs["Color"], mix.inputs["B"])
    return mix.outputs["Result"]


def _scattering(bsdf, links, attr, part, subsurface: str) -> None:
    """Subsurface and specular settings by segmentation class (skin, eyes, mouth)."""
    if SUBSURFACE[subsurface] is not None:
        bsdf.subsurface_method = SUBSURFACE[subsurface]
    if part.seg in (SEG_CLASSES["face"], SEG_CLASSES["head"], SEG_CLASSES["neck"]):
        set_input(bsdf, "Subsurface Weight", 1.0 if part.seg != SEG_CLASSES["head"] else 0.6)
        set_input(bsdf, "Subsurface Radius", (1.0, 0.37, 0.19))   # skin: red scatters furthest
        set_input(bsdf, "Subsurface Scale", SKIN_SSS_SCALE_CM)    # scene units are cm
        set_input(bsdf, "Subsurface IOR", 1.4)
        set_input(bsdf, "Specular IOR Level", 0.35)
    elif part.seg == SEG_CLASSES["eyes"]:
        set_input(bsdf, "Subsurface Weight", 0.3)
        set_input(bsdf, "Subsurface Radius", (1.0, 0.5, 0.4))
        set_input(bsdf, "Subsurface Scale", 0.05)
        set_input(bsdf, "Specular IOR Level", 0.1)                 # the cornea carries the gloss
    elif part.seg == SEG_CLASSES["mouth"]:
        teeth = "teeth" in part.name
        set_input(bsdf, "Subsurface Weight", 0.25 if teeth else 0.6)
        set_input(bsdf, "Subsurface Radius", (1.0, 0.6, 0.4))
        set_input(bsdf, "Subsurface Scale", 0.05 if teeth else 0.15)
        if part.texture != "face":
            # The rig's mouth is a closed shell lit only through the lips: physically
            # almost black. It also gets pyrender's unoccluded ambient term (emission =
            # colour x ambient, set per sample), so teeth and tongue stay visible.
            links.new(attr.outputs["Color"], bsdf.inputs["Emission Color"])
    if SUBSURFACE[subsurface] is None:
        set_input(bsdf, "Subsurface Weight", 0.0)
