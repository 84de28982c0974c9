"""What people read on the sliders: a label and a tooltip for each direction the backend offers.

The backend names directions for programs ("31_Smiling" boundaries arrive as "Smiling", PCA ones
as "PC3", a model's own as it was trained, e.g. "head_turn"); here they become words, with a
sentence on what the slider does where that is known.
"""
from __future__ import annotations

import re

# CelebA's attributes (the official boundaries) and the names our models are trained with
KNOWN = {
    "smiling": "Smile", "smile": "Smile", "young": "Youth", "age": "Age",
    "eyeglasses": "Glasses", "glasses": "Glasses", "male": "Masculine", "gender": "Masculine",
    "bald": "Baldness", "bangs": "Bangs", "black hair": "Black hair", "blond hair": "Blond hair",
    "brown hair": "Brown hair", "gray hair": "Grey hair", "wavy hair": "Wavy hair", "straight hair": "Straight hair",
    "receding hairline": "Receding hairline", "heavy makeup": "Make-up", "wearing lipstick": "Lipstick",
    "mouth slightly open": "Mouth open", "mouth open": "Mouth open", "narrow eyes": "Narrow eyes",
    "eyes open": "Eyes open", "arched eyebrows": "Arched eyebrows", "bushy eyebrows": "Bushy eyebrows",
    "big nose": "Nose size", "pointy nose": "Pointy nose", "big lips": "Lip size", "chubby": "Chubby face",
    "double chin": "Double chin", "high cheekbones": "High cheekbones", "oval face": "Oval face",
    "pale skin": "Pale skin", "rosy cheeks": "Rosy cheeks", "goatee": "Goatee", "mustache": "Moustache",
    "no beard": "Clean-shaven", "beard": "Beard", "sideburns": "Sideburns", "5 o clock shadow": "Stubble",
    "bags under eyes": "Bags under the eyes", "wearing hat": "Hat", "wearing earrings": "Earrings",
    "wearing necklace": "Necklace", "wearing necktie": "Necktie", "attractive": "“Attractive” (CelebA's label)",
    "blurry": "Blur", "head turn": "Head turn", "head_turn": "Head turn", "pose": "Head turn",
}
TIPS = {
    "Smile": "More or less of a smile", "Age": "Younger to the left, older to the right",
    "Youth": "CelebA's 'Young' attribute: to the right looks younger, to the left older",
    "Glasses": "Adds eyeglasses to the right, removes them to the left",
    "Masculine": "CelebA's 'Male' attribute: to the right more masculine, to the left more feminine",
    "Clean-shaven": "CelebA's 'No_Beard' attribute: to the left a beard grows",
    "Head turn": "Turns the head left or right",
}
PCA = re.compile(r"^pc[ _]?(\d+)$", re.IGNORECASE)


def direction_label(name: str, source: str = "model") -> tuple[str, str]:
    """(label, tooltip) for a direction called `name` from `source` ("model", "official-boundary", "pca")."""
    pca = PCA.match(name)
    if pca:
        n = pca.group(1)
        return (f"Variation {n}", f"An unnamed way this model's faces vary (principal component {n} of its "
                                  "latent space): what it changes depends on the model, so try it; "
                                  "left and right go opposite ways")
    key = name.replace("_", " ").strip().lower()
    label = KNOWN.get(key) or KNOWN.get(name) or key.capitalize()
    origin = "a direction the model was trained with" if source == "model" else "an attribute direction of the model"
    tip = TIPS.get(label, f"'{name}': {origin}; the centre mark is the photo as projected")
    return label, tip
