"""What Rasa's server process loads besides the model: the tracker store, and a performance fix to Rasa.

Importing this package (Rasa does, for the tracker store named in endpoints.yml) applies
``rasa_patches``. None of it is part of the trained model, so none of it is in train-bot's hash.
"""

from runtime import rasa_patches

rasa_patches.apply()
