"""API schemas, named by role: `...Create` comes in, `...Public` goes out."""
