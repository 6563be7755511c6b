"""``machimori sim city``: the whole city on one machine, on an accelerated clock, through the
real broker, gateway and store, ending with a report per device; ``--chaos`` breaks the parts
one after another meanwhile and measures what it cost and how long the city took to recover."""
