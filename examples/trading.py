"""Two organisations trade through a shared space: a buyer asks for quotes, a
supplier offers, the buyer accepts through a capability, the supplier sees it.

Each party pays for what it stores: the space charges credit per second per KiB,
and every creation costs a little, so nobody can fill the market for free.
Run it: ``python examples/trading.py``.
"""

from __future__ import annotations

import sys
import threading

import tuplespace as ts


def say(line: str) -> None:
    sys.stdout.write(line + "\n")  # one write per line: the two parties' lines never mix


market = ts.Space(name="market", charge_rate="0.05", creation_charge="0.1")
market.grant_credit("globex", 100)  # the operator sells credit to the parties
market.grant_credit("acme", 100)


def supplier(ready: threading.Event, posted: threading.Event, done: threading.Event) -> None:
    """acme: finds open requests for steel, offers, and waits for the answer."""
    with market.watch_records(under="rfq", events={"create"}) as requests:
        ready.set()
        change = requests.get(timeout=10)
    posted.wait(10)  # globex tells of its request first: the lines come in one order
    rfq = market.record(change.path)
    say(f"acme   sees   {change.path}: {dict(rfq.all())}")
    offer = market.create(
        "offers/acme-1",
        {"rfq": rfq.address, "price": ts.Credit("9.50"), "qty": rfq.get("qty"), "state": "offered"},
        lease=3600,  # acme pays for an hour of storage
        principal="acme",
    )
    answer = offer.capability({"read", "set"}, lease=600)  # globex may read and answer, nothing else
    with offer.watch() as watch:
        rfq.set("offer", answer.address)  # tell the buyer where to answer
        for update in watch:
            if update.tag == "state":
                say(f"acme   sees   {update.path}: state is now {update.value!r} (v{update.version})")
                break
    answer.revoke()
    offer.set("state", "shipped")
    done.set()


def buyer(posted: threading.Event) -> None:
    """globex: asks, waits for an offer, accepts it through the capability it got."""
    rfq = market.create(
        "rfq/globex-1", {"item": "steel", "qty": 100, "state": "open"}, credit=5, principal="globex"
    )
    credit, seconds = rfq.view("$credit", "$lifetime")
    say(f"globex posts  {rfq.address}  ($credit {credit:.2f}, $lifetime {seconds:.0f} s)")
    posted.set()
    with rfq.watch() as watch:  # watch first, then look: no answer slips between
        reply = rfq.get("offer")
        while reply is None:
            update = watch.get(timeout=10)
            if update is not None and update.tag == "offer":
                reply = update.value
    offer = market.record(reply)  # the capability's address: read and set only
    say(f"globex reads  the offer: {offer.view('price', 'qty')}, allowed: {sorted(offer.operations)}")
    offer.set("state", "accepted")
    try:
        offer.destroy()
    except ts.NotAllowed as exc:
        say(f"globex cannot destroy it: {exc}")
    rfq.set("state", "closed")


ready, posted, done = threading.Event(), threading.Event(), threading.Event()
acme = threading.Thread(target=supplier, args=(ready, posted, done))
acme.start()
ready.wait(10)
buyer(posted)
done.wait(10)
acme.join()

say("records: " + ts.format(market.record("offers/acme-1")))
say(f"the rfq is held by {market.record('rfq/globex-1').get('$refcount')} offer")
say(f"top-level records: {list(market.record('$').get('TUPS'))}")
say(f"credit left: globex {market.account('globex'):.2f}, acme {market.account('acme'):.2f}")
market.close()
