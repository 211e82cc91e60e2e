"""A thermostat kept by rules: reactions, a Push Logic rule and a method (docs/active.md)."""

import tuplespace as ts

space = ts.Space()
kitchen = space.create("kitchen", {"temp": 21.0})
house = space.create("house", {"comfort": None})
thermostat = space.create(
    "thermostat",
    {
        "target": 21.0,
        "bump": ts.Method("function(self, d) self.target = self.target + d return self.target end"),
    },
)

# Reactions: every reading of the kitchen sets its temperature; one above 30 raises an alarm.
space.rules.add("track", template=("reading", "kitchen", float), set={"kitchen.temp": "t[2]"})
space.rules.add(
    "hot",
    on="write",
    template=("reading", str, float),
    when="t[2] > 30.0",
    write=[("alarm", "t[1]", "t[2] - 30.0")],
)
# A Push Logic rule: the house is comfortable while the kitchen is between 19 and 23 degrees.
space.rules.add("comfort", set="house.comfort", to="kitchen.temp >= 19.0 && kitchen.temp <= 23.0")

for temp in (22.5, 31.0, 18.0):
    space.write(("reading", "kitchen", temp))
    alarms = space.read_all(("alarm", str, float))
    print(f"reading {temp}: kitchen {kitchen.get('temp')}, comfort {house.get('comfort')}, alarms {alarms}")

print("bump the target:", thermostat.call("bump", 0.5))
thermostat.set("bump", ts.Method("function(self, d) while true do end end"))
try:
    thermostat.call("bump", 0.5)
except ts.LimitReached as exc:
    print(f"a runaway method stops at {exc.limit}: target still {thermostat.get('target')}")

try:  # an alarm that writes a reading would set off "hot" again: refused
    space.rules.add("echo", template=("alarm", str, float), write=[("reading", "t[1]", "t[2]")])
except ts.RuleCycle as exc:
    print("refused:", " -> ".join(exc.cycle))

for rule in space.rules.list():
    print(f"{rule.name}: level {rule.level}, fired {rule.fired}")
