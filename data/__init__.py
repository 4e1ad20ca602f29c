"""Code systems, corpora readers and the domain types of medcode. Imports nothing of the project."""
