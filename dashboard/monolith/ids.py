"""Component ids of the monolith feature."""

MONOLITH_IMAGE = "monolith-image"  # dropdown: which of the last results to run the monolith on
MONOLITH_BUTTON = "monolith-button"
MONOLITH_SPINNER = "monolith-spinner"
MONOLITH_PROGRESS = "monolith-progress"
MONOLITH_RESULT = "monolith-result"
MONOLITH_DONE = "monolith-done"
