from sqlalchemy import CheckConstraint


def one_of(column, values, name=None):
    """CHECK constraint limiting a status-like column to the given values."""
    quoted = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({quoted})", name=name or f"{column}_valid")
