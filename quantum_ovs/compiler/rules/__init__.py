"""Flow generators, one module per owner kind.

Each function is pure: it takes model values (and the few numbers the
engine allocated: network local ids, conjunction ids, OpenFlow ports) and
returns a list of Flow values, all carrying the owner's cookie.
"""
