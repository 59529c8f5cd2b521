"""Pages: the HIT (for MTurk and for local annotators) and the annotators' start page."""
