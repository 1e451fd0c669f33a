"""The names of a SavedModel folder's files (tensorflow/python/saved_model/constants.py), imported by everyone
that looks for them: no numpy, no TensorFlow."""

GRAPH_FILE = "saved_model.pb"  # SAVED_MODEL_FILENAME_PB
VARIABLES_DIR = "variables"  # VARIABLES_DIRECTORY
VARIABLES = "variables/variables"  # VARIABLES_DIRECTORY / VARIABLES_FILENAME: the bundle's prefix
