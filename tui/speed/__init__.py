"""One speed model for this machine (issue 27): rates measured per tensor type, predictions with their basis."""
