"""Staffing maths (pure): Erlang B/C/A and the seats a merger needs after each cut-over."""
