"""Named vertex groups of the 478-point MediaPipe face mesh (the rig's topology).

Sides are the *subject's*: "right" is the subject's right, which appears on the image
left in a frontal view (negative x in the rig frame).
"""

from __future__ import annotations

N_FACE = 468          # mesh vertices without irises
N_MESH = 478          # with the 10 iris landmarks (468-472 right iris, 473-477 left)
RIGHT_IRIS_CENTER, LEFT_IRIS_CENTER = 468, 473

#: The documented 68-point (dlib/iBUG order) subset of the 478 MediaPipe landmarks.
LM68: tuple[int, ...] = (
    # jaw 0-16 (image left to right)
    127, 234, 93, 132, 58, 136, 150, 176, 152, 400, 379, 365, 288, 361, 323, 454, 356,
    # right brow 17-21, left brow 22-26
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
    # nose bridge 27-30, nose bottom 31-35
    168, 197, 5, 4, 75, 97, 2, 326, 305,
    # right eye 36-41, left eye 42-47
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    # outer lips 48-59, inner lips 60-67
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,
    78, 82, 13, 312, 308, 317, 14, 87,
)

FACE_OVAL: tuple[int, ...] = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)

# Eyelid contours, from the outer corner to the inner corner (subject's right eye).
R_EYE_OUTER, R_EYE_INNER = 33, 133
R_UPPER_LID = (33, 246, 161, 160, 159, 158, 157, 173, 133)
R_LOWER_LID = (33, 7, 163, 144, 145, 153, 154, 155, 133)
L_EYE_OUTER, L_EYE_INNER = 263, 362
L_UPPER_LID = (263, 466, 388, 387, 386, 385, 384, 398, 362)
L_LOWER_LID = (263, 249, 390, 373, 374, 380, 381, 382, 362)

# Lips, from the subject's right corner to the left corner.
OUTER_UPPER_LIP = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
OUTER_LOWER_LIP = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
INNER_UPPER_LIP = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
INNER_LOWER_LIP = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)

R_BROW_UPPER = (70, 63, 105, 66, 107)   # outer -> inner
R_BROW_LOWER = (46, 53, 52, 65, 55)
L_BROW_UPPER = (300, 293, 334, 296, 336)
L_BROW_LOWER = (276, 283, 282, 295, 285)

NOSE_TIP = 1
CHIN = 152
