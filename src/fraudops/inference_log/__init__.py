"""The inference log: every served prediction, durably, into the lake's `predictions`, once."""
