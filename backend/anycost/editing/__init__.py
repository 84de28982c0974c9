"""Editing a face: projecting a photo into W+ (projection, the perceptual loss), the edit
directions, and finding and aligning faces in real photos (faces/). Uses models/ and formats/."""
