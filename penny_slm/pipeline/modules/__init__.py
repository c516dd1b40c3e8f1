"""The modules a turn runs (research, context, guard with its rewriter and tone screen) and the drift monitor."""
