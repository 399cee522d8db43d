"""The REST service of featurestore (FastAPI). The service itself arrives with the serving work;
this package exists so the layout and packaging are in place."""
