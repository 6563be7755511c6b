"""The hardware-in-the-loop harness: one scenario file, run against the simulators or a bench.

A scenario (``scenarios/*.yaml``) is a script of steps for one device: start its agent, drive its
inputs, inject faults, and expect messages at the city side within deadlines and tolerances.
``--target sim`` puts the simulators at the far end of the agent's ports (ptys, mock pins, frame
sources); ``--target real`` runs the same agent and the same expectations against a device wired
to real ports, and asks a person at the bench for what only a person can do. Each device kind is a
plug-in in ``sim/hil/kinds/``: its bench (simulated and real) and the steps that drive it.
"""
