"""Component ids of the API panel."""

LOCATION = "api-panel-location"
CURL = "api-panel-curl"
CURL_RAW = "api-panel-curl-raw"
PYTHON = "api-panel-python"
LINKS = "api-panel-links"
