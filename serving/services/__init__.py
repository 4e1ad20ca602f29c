"""The service's logic, as functions over a SQLAlchemy session; routes only translate HTTP.

State-changing functions run one transaction each and commit it, so the same functions serve the API,
the command line and the learning loop's simulated coder.
"""
