"""Collection plans: who must be recorded, how, in which conditions, under which consent."""
