"""Pages: the HIT for local annotators, the annotators' start page, and the dashboard (each crowd's own
pages live with its adapter, `annotator.crowds`)."""
