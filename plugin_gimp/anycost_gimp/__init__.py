"""The GIMP 3 plug-in's files (anycost-edit.py), as package data for `anycost-backend install-plugin gimp`,
which installs them as plug-ins/anycost-edit/anycost-edit.py. Nothing here is imported by GIMP."""
