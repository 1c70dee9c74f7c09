"""The load client: generated transactions sent to a running server (`fraudops traffic`)."""
