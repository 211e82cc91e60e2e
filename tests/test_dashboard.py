"""The web dashboard at ``/``: its files over HTTP, and the page itself in Debian's
Chromium, driven by Playwright against a real server on 127.0.0.1.

Chromium is Debian's (``/usr/bin/chromium``, installed here with apt-get when it is
missing), never a browser downloaded by Playwright.  The screenshots land in
``tests/artifacts/``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Locator, Page, expect, sync_playwright

import tuplespace as ts
from helpers import PATIENCE, missing
from tuplespace.testing import LiveServer

Serve = Callable[..., LiveServer]

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"

ADMIN = "dashboard-admin-secret-0001"
WORKER = "dashboard-worker-secret-0002"
READER = "dashboard-reader-secret-0003"
TOKENS = {
    "tokens": [
        {"name": "ops", "token": ADMIN, "admin": True},
        {"name": "worker", "token": WORKER, "spaces": {"jobs": ["read", "write", "take", "subscribe"]}},
        {"name": "reader", "token": READER, "spaces": {"*": ["read"]}},
    ]
}

# Chromium logs the error answers of the API the tests ask for (400, 401, 403) as errors.
ANSWERED = re.compile(r"Failed to load resource: the server responded with a status of 40[013] ")

# Installing Chromium on a new machine takes longer than a test usually may.
pytestmark = pytest.mark.timeout(900)


def _install_chromium() -> str | None:
    """Install Debian's Chromium if it is missing; why it could not be, or None."""
    if CHROMIUM.exists():
        return None
    if shutil.which("apt-get") is None:
        return "Chromium is missing and there is no apt-get to install it"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "chromium"]
    done = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:  # the package lists may be missing or old
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
        done = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not CHROMIUM.exists():
        return f"apt-get install chromium failed: {done.stderr.strip()[-2000:]}"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Playwright never downloads a browser of its own here.
    os.environ["PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD"] = "1"
    problem = _install_chromium()
    if problem is not None:
        missing(problem)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser, serve: Serve) -> Iterator[Page]:
    """A page in a new browser context; the test fails if the page logs an error
    (a script error, a file that is missing, a Content-Security-Policy violation).

    It closes before the servers the test started with ``serve`` stop."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.set_default_timeout(PATIENCE * 1000)
    expect.set_options(timeout=PATIENCE * 1000)
    page = context.new_page()
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and not ANSWERED.match(message.text):
            problems.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    try:
        yield page
    finally:
        context.close()
    assert problems == []


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / name, full_page=True)


def figures(page: Page, space: str) -> Locator:
    """The cells of a space's row in the table of spaces: tuples, waiting,
    subscribers, writes, takes, reads."""
    return page.locator(f'#space-rows tr[data-space="{space}"] td')


def open_space(page: Page, name: str) -> None:
    page.get_by_label("Open space").fill(name)
    page.get_by_role("button", name="Open", exact=True).click()
    expect(page.get_by_role("heading", name=f"Space {name}")).to_be_visible()


def write(page: Page, text: str) -> None:
    form = page.locator("#write-form")
    form.get_by_label("Tuple", exact=True).fill(text)
    form.get_by_role("button", name="Write").click()


def watch(page: Page, template: str) -> None:
    form = page.locator("#events-form")
    form.get_by_label("Template", exact=True).fill(template)
    form.get_by_role("button", name="Watch").click()
    expect(page.get_by_role("button", name=re.compile("^Stop watching"))).to_have_count(1)


# -- the files ---------------------------------------------------------------------------


def test_the_dashboard_is_served_with_its_types_and_policy_outside_the_api(
    serve: Serve,
) -> None:
    server = serve(store="memory", tokens=TOKENS)
    modules = sorted((ROOT / "clients" / "js" / "src").glob("*.js"))
    with httpx.Client(base_url=server.url, timeout=PATIENCE) as http:
        types = {
            "/": "text/html; charset=utf-8",
            "/dashboard/dashboard.js": "text/javascript; charset=utf-8",
            "/dashboard/dashboard.css": "text/css; charset=utf-8",
            "/dashboard/textform.js": "text/javascript; charset=utf-8",
            **{f"/js/{module.name}": "text/javascript; charset=utf-8" for module in modules},
        }
        for path, media_type in types.items():
            r = http.get(path)  # no token: the files hold no data
            assert r.status_code == 200, (path, r.text)
            assert r.headers["content-type"] == media_type
            assert "default-src 'none'" in r.headers["content-security-policy"]
            assert r.headers["x-content-type-options"] == "nosniff"
            assert http.head(path).status_code == 200
        assert {m.name for m in modules} >= {"index.js", "errors.js", "spaces.js"}
        for module in modules:
            assert http.get(f"/js/{module.name}").content == module.read_bytes()
        assert '<script type="module" src="dashboard/dashboard.js">' in http.get("/").text
        paths = http.get("/openapi.json", headers={"Authorization": f"Bearer {ADMIN}"}).json()["paths"]
        assert not {"/", "/js/index.js"} & set(paths)
        assert "/spaces/{space}/write" in paths
        missing = http.get("/dashboard/other.js")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"


def test_the_api_documentation_is_served_with_every_file_it_needs_and_a_policy(serve: Serve) -> None:
    server = serve(store="memory")
    with httpx.Client(base_url=server.url, timeout=PATIENCE) as http:
        page = http.get("/docs")
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert "default-src 'none'" in page.headers["content-security-policy"]
        references = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert len(references) == 4, references  # its icon, style sheet and two scripts
        for reference in references:
            assert not reference.startswith(("http:", "https:", "//")), reference  # nothing from elsewhere
            asset = http.get(f"/{reference}")
            assert asset.status_code == 200, reference
            assert asset.headers["x-content-type-options"] == "nosniff"
            assert "default-src 'none'" in asset.headers["content-security-policy"]
        assert "SwaggerUIBundle" in http.get("/docs/swagger-ui-bundle.js").text
        assert '"openapi.json"' in http.get("/docs/docs.js").text
        assert "/docs" not in http.get("/openapi.json").json()["paths"]


# -- the page ----------------------------------------------------------------------------


def test_a_feed_opens_with_the_tuples_already_there(page: Page, serve: Serve) -> None:
    server = serve(store="memory")
    for n in (1, 2):
        r = httpx.post(f"{server.url}/spaces/stock/write", json={"tuple": ["item", n]})
        assert r.status_code == 200, r.text
    page.goto(server.url + "/")
    open_space(page, "stock")
    watch(page, '("item", ?)')
    feed = page.get_by_role("log", name="Events")
    items = feed.get_by_role("listitem")
    expect(items).to_have_count(2)
    expect(items.nth(0)).to_contain_text('present ("item", 2)')  # the newest on top
    expect(items.nth(1)).to_contain_text('present ("item", 1)')
    write(page, '("item", 3)')
    expect(items).to_have_count(3)
    expect(items.first).to_contain_text('write ("item", 3)')
    # Unchecked, a feed shows only what happens from then on.
    page.get_by_role("button", name=re.compile("^Stop watching")).click()
    page.get_by_label("First the matching tuples already there (present)").uncheck()
    watch(page, '("item", ?)')
    write(page, '("item", 4)')
    expect(items.first).to_contain_text('write ("item", 4)')
    expect(feed.get_by_text("present")).to_have_count(2)  # the first feed's, none more


def test_the_live_feed_shows_tuples_of_every_arity(page: Page, serve: Serve) -> None:
    server = serve(store="memory")
    r = httpx.post(f"{server.url}/spaces/mixed/write", json={"tuple": ["old"]})
    assert r.status_code == 200, r.text
    page.goto(server.url + "/")
    open_space(page, "mixed")
    form = page.locator("#events-form")
    expect(form.get_by_label("Template", exact=True)).to_have_value("?")  # every tuple
    form.get_by_role("button", name="Watch").click()
    expect(page.get_by_role("button", name="Stop watching ?")).to_be_visible()
    items = page.get_by_role("log", name="Events").get_by_role("listitem")
    expect(items).to_have_count(1)
    expect(items.first).to_contain_text('present ("old")')
    written = ["()", '("a")', '("b", 1)', '("c", 1, 2.5)', "(1, 2, 3, 4, 5)"]
    for text in written:
        write(page, text)
        expect(items.first).to_contain_text(f"write {text}")
    wide = list(range(40))
    r = httpx.post(f"{server.url}/spaces/mixed/write", json={"tuple": wide})
    assert r.status_code == 200, r.text
    expect(items.first).to_contain_text(f"write ({', '.join(map(str, wide))})")
    page.locator("#take-form").get_by_label("Template", exact=True).fill('("b", ?int)')
    page.locator("#take-form").get_by_role("button", name="Take").click()
    expect(items.first).to_contain_text('take ("b", 1)')
    expect(items).to_have_count(8)


def test_a_tuple_written_appears_in_the_feed_and_is_taken_through_the_forms(page: Page, serve: Serve) -> None:
    server = serve(store="memory")
    page.goto(server.url + "/")
    expect(page.get_by_text("No spaces to show")).to_be_visible()
    open_space(page, "jobs")
    unlisted = page.get_by_text("This space is not listed")
    expect(unlisted).to_be_visible()
    watch(page, "(?, ?, ?)")

    write(page, '("job", 1, "resize")')
    expect(page.locator("#write-result")).to_contain_text('Written ("job", 1, "resize")')
    expect(unlisted).to_be_hidden()
    feed = page.get_by_role("log", name="Events")
    expect(feed.get_by_role("listitem")).to_have_count(1)
    expect(feed.get_by_role("listitem").first).to_contain_text('write ("job", 1, "resize")')
    tuples = figures(page, "jobs").first
    expect(tuples).to_have_text("1")
    expect(page.locator("#space-count")).to_have_text("1")
    # Another client's write shows up too.
    r = httpx.post(f"{server.url}/spaces/jobs/write", json={"tuple": ["job", 2, {"$float": "2.5"}]})
    assert r.status_code == 200, r.text
    expect(feed.get_by_role("listitem").first).to_contain_text('write ("job", 2, 2.5)')
    expect(tuples).to_have_text("2")

    take = page.locator("#take-form")
    take.get_by_label("Template", exact=True).fill('("job", 1, ?)')
    take.get_by_role("button", name="Take").click()
    expect(page.locator("#take-result")).to_have_text('Took ("job", 1, "resize")')
    expect(feed.get_by_role("listitem").first).to_contain_text('take ("job", 1, "resize")')
    expect(tuples).to_have_text("1")
    expect(figures(page, "jobs").nth(4)).to_have_text("1")  # takes
    take.get_by_role("button", name="Take").click()
    expect(page.locator("#take-result")).to_have_text("Nothing matched.")

    query = page.locator("#query-form")
    query.get_by_role("button", name="Browse tuples of 3 fields").click()
    found = page.get_by_role("list", name="Tuples found").get_by_role("listitem")
    expect(query.get_by_label("Template", exact=True)).to_have_value("(?, ?, ?)")
    expect(found).to_have_text(['("job", 2, 2.5)'])
    query.get_by_label("Template", exact=True).fill('("job", ?int, ?float)')
    query.get_by_role("button", name="Count").click()
    expect(page.locator("#query-result")).to_have_text("1 matching tuple")

    summary = page.locator("#chart-summary")
    expect(summary).to_contain_text("Peak of the last minute:")
    expect(summary).to_contain_text(re.compile(r"Peak of the last minute: writes [1-9]"))
    expect(page.locator("#chart polyline.writes")).to_have_count(1)
    screenshot(page, "dashboard.png")


def test_errors_of_the_server_and_of_the_input_are_shown(page: Page, serve: Serve) -> None:
    server = serve(store="memory")
    page.goto(server.url + "/")
    open_space(page, "jobs")
    query = page.locator("#query-form")
    error = page.locator("#query-error")

    # The page reads the text form before anything is sent, saying where it is wrong...
    query.get_by_label("Template", exact=True).fill('("job", ?integer)')
    query.get_by_role("button", name="Read all").click()
    expect(error).to_be_visible()
    expect(error).to_contain_text('wire_error: unknown type "integer"; types are null, bool, int')
    expect(error).to_contain_text("at offset 9 of the text")
    expect(page.get_by_role("alert").filter(has_text="wire_error")).to_have_count(1)

    query.get_by_label("Template", exact=True).fill('("job", ')
    query.get_by_role("button", name="Count").click()
    expect(error).to_contain_text("wire_error: unexpected end of the text at offset 8 of the text")

    # ... the binding checks the values in it...
    query.get_by_label("Template", exact=True).fill('("job", bytes"AP8")')
    query.get_by_role("button", name="Count").click()
    expect(error).to_contain_text('wire_error: [1]: "$bytes" text is not canonical base64')

    # ... and the server the rest: its error, with the part of the request at fault (a
    # template in wire JSON, for the fields the text form has no words for).
    query.get_by_label("Template", exact=True).fill('["job", {"$regex": "("}]')
    query.get_by_role("button", name="Count").click()
    expect(error).to_contain_text("400 invalid_template: template[1]")

    query.get_by_label("Template", exact=True).fill('("job")')
    query.get_by_role("button", name="Count").click()
    expect(error).to_be_hidden()
    expect(page.locator("#query-result")).to_have_text("0 matching tuples")


def test_a_token_protected_server(page: Page, serve: Serve) -> None:
    server = serve(store="memory", tokens=TOKENS)
    admin = {"Authorization": f"Bearer {ADMIN}"}
    r = httpx.post(f"{server.url}/spaces/jobs/write", json={"tuple": ["job", 1]}, headers=admin)
    assert r.status_code == 200, r.text

    page.goto(server.url + "/")
    expect(page.get_by_text("No spaces to show")).to_be_visible()  # without a token: none to read

    page.get_by_label("Token").fill("not-a-token-of-this-server")
    page.get_by_role("button", name="Use token").click()
    expect(page.locator("#spaces-error")).to_contain_text("401 unauthorized")

    page.get_by_label("Token").fill(WORKER)
    page.get_by_role("button", name="Use token").click()
    expect(page.locator("#spaces-error")).to_be_hidden()
    expect(figures(page, "jobs").first).to_have_text("1")
    page.get_by_role("button", name="jobs", exact=True).click()
    expect(page.get_by_role("heading", name="Space jobs")).to_be_visible()
    watch(page, '("job", ?)')
    write(page, '("job", 2)')
    feed = page.get_by_role("log", name="Events")
    expect(feed.get_by_role("listitem").first).to_contain_text('write ("job", 2)')
    expect(figures(page, "jobs").first).to_have_text("2")

    # The token stays with the tab: a reload still uses it, and reopens the space.
    page.reload()
    expect(page.get_by_label("Token")).to_have_value(WORKER)
    expect(page.get_by_role("heading", name="Space jobs")).to_be_visible()
    expect(figures(page, "jobs").first).to_have_text("2")

    page.get_by_label("Token").fill(READER)
    page.get_by_role("button", name="Use token").click()
    write(page, '("job", 3)')
    expect(page.locator("#write-error")).to_contain_text("403 forbidden")
    screenshot(page, "dashboard-token.png")
    stored = httpx.post(
        f"{server.url}/spaces/jobs/count", json={"template": ["job", {"$any": True}]}, headers=admin
    )
    assert stored.json() == {"count": 2}


def test_a_record_is_created_found_watched_set_and_destroyed_through_the_forms(
    page: Page, serve: Serve
) -> None:
    server = serve(store="memory")
    page.goto(server.url + "/")
    open_space(page, "plant")
    records = page.locator("#records")
    changes_form = page.locator("#changes-form")
    changes_form.get_by_role("button", name="Watch records").click()
    expect(page.get_by_role("button", name="Stop watching every record")).to_be_visible()
    page.locator("#find-form").get_by_role("button", name="Find").click()
    expect(page.locator("#find-result")).to_have_text("0 records found")

    create = page.locator("#create-form")
    create.get_by_label("Path").fill("sensors/kitchen")
    create.get_by_label("Fields", exact=True).fill('{"temp": 21.5, "unit": "C"}')
    create.get_by_label("Lease in seconds (empty: none)").fill("3600")
    create.get_by_role("button", name="Create").click()
    address = "tuplespace://local/spaces/plant/sensors/kitchen"
    expect(page.locator("#create-result")).to_have_text(f"Created {address}")

    # The records found, as a tree of their paths.
    tree = page.get_by_role("list", name="Records found, by path")
    expect(tree.get_by_role("listitem")).to_have_count(2)
    expect(tree.get_by_role("listitem").first).to_contain_text(re.compile(r"^sensors/"))
    kitchen = tree.locator("li li")
    expect(kitchen).to_have_count(1)
    expect(kitchen.get_by_role("button", name=f"Open record {address}")).to_have_text("kitchen")
    fields = '{"temp": 21.5, "unit": "C"}'
    node = rf"^kitchen {re.escape(fields)} v1, \$credit 0, 3[56][0-9]{{2}} s$"
    expect(kitchen).to_have_text(re.compile(node))
    feed = page.get_by_role("log", name="Record changes")
    expect(feed.get_by_role("listitem").first).to_contain_text(f"create sensors/kitchen v1 {fields}")

    # Another client's record is found by a template over a tag.
    r = httpx.post(
        f"{server.url}/spaces/plant/records/create", json={"path": "sensors/hall", "fields": {"unit": "F"}}
    )
    assert r.status_code == 201, r.text
    expect(feed.get_by_role("listitem").first).to_contain_text('create sensors/hall v1 {"unit": "F"}')
    find = page.locator("#find-form")
    find.get_by_label("Record template", exact=True).fill('{"unit": "C", "temp": ?float}')
    find.get_by_label("Under path (empty: everywhere)").fill("sensors")
    find.get_by_role("button", name="Find").click()
    expect(page.locator("#find-result")).to_have_text("1 record found")
    expect(kitchen).to_have_count(1)

    kitchen.get_by_role("button", name=f"Open record {address}").click()
    record = page.locator("#record-form")
    expect(record.get_by_role("heading", name=f"Record {address}")).to_be_visible()
    expect(page.locator("#record-version")).to_have_text("1")
    record.get_by_label("Tag").fill("temp")
    record.get_by_label("Value", exact=True).fill("22.5")
    record.get_by_role("button", name="Set").click()
    expect(page.locator("#record-result")).to_have_text("Set temp: version 2")
    expect(page.locator("#record-version")).to_have_text("2")
    expect(page.locator("#record-fields")).to_have_text('{"temp": 22.5, "unit": "C"}')
    expect(kitchen).to_contain_text('{"temp": 22.5, "unit": "C"} v2')
    expect(feed.get_by_role("listitem").first).to_contain_text("update sensors/kitchen v2 temp = 22.5")
    got = httpx.post(
        f"{server.url}/spaces/plant/records/get", json={"ref": "sensors/kitchen", "tags": ["temp"]}
    )
    assert got.json() == {"values": [{"$float": "22.5"}]}
    screenshot(page, "dashboard-records.png")

    record.get_by_role("button", name="Destroy").click()
    expect(record).to_be_hidden()
    expect(page.locator("#create-result")).to_have_text(f"Destroyed {address}")
    expect(feed.get_by_role("listitem").first).to_contain_text("destroy sensors/kitchen v2")
    expect(tree.get_by_role("listitem")).to_have_count(0)
    expect(page.locator("#find-result")).to_have_text("0 records found")
    expect(records.get_by_role("alert").filter(has_text=re.compile("."))).to_have_count(0)
    gone = httpx.post(f"{server.url}/spaces/plant/records/open", json={"ref": "sensors/kitchen"})
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "record_not_found"


def test_tuples_of_every_type_are_typed_and_shown_in_the_text_form_as_python_writes_it(
    page: Page, serve: Serve
) -> None:
    server = serve(store="memory")
    text = (
        '("job", 42, -1.5, 1.0, 1e+16, 1e-05, true, null, bytes"AP8=", time"2024-05-01T12:00:00.5Z", '
        'uri"tuplespace://local/spaces/jobs/a", credit"12.5", {"n": (1, 2), "unit": "C"}, ("x"), (), '
        "123456789012345678901234567890)"
    )
    page.goto(server.url + "/")
    open_space(page, "jobs")
    watch(page, "(" + ", ".join(["?"] * 16) + ")")
    write(page, "  " + text.replace(", ", " ,\n "))  # whitespace between tokens is free
    expect(page.locator("#write-result")).to_contain_text(f"Written {text} (lease ")
    feed = page.get_by_role("log", name="Events")
    expect(feed.get_by_role("listitem").first).to_contain_text(f"write {text}")
    with ts.connect(server.space_url("jobs")) as space:
        stored = space.read((ts.ANY,) * 16, timeout=0)
    assert stored == ts.parse(text)
    assert ts.format(stored) == text  # the page writes what Python writes

    # A template's fields: ? for any value, ?type for any value of one type, at any depth,
    # read as Python's ts.parse_template reads them.
    query = page.locator("#query-form")
    found = page.get_by_role("list", name="Tuples found").get_by_role("listitem")
    for template, count in [
        ("(?str, ?int, ?float, ?, ?, ?, ?bool, ?null, ?bytes, ?time, ?uri, ?credit, ?map, ?tuple, (), ?)", 1),
        ('("job", ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, {"n": (?int, ? int), "unit": ?}, ("x"), ?, ?)', 1),
        ('("job", ?str, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)', 0),
    ]:
        query.get_by_label("Template", exact=True).fill(template)
        query.get_by_role("button", name="Read all").click()
        expect(page.locator("#query-result")).to_have_text(f"{count} tuple{'' if count == 1 else 's'} found")
        expect(found).to_have_text([text] * count)
        with ts.connect(server.space_url("jobs")) as space:  # the same template in Python
            assert len(space.read_all(ts.parse_template(template))) == count


def test_a_failed_operation_clears_the_result_it_showed_before(page: Page, serve: Serve) -> None:
    server = serve(store="memory")
    page.goto(server.url + "/")
    open_space(page, "jobs")
    write(page, '("job", 1)')
    result, error = page.locator("#write-result"), page.locator("#write-error")
    expect(result).to_contain_text('Written ("job", 1)')
    write(page, '("job", 2')
    expect(error).to_have_text("wire_error: unexpected end of the text at offset 9 of the text")
    expect(result).to_have_text("")

    query = page.locator("#query-form")
    found = page.get_by_role("list", name="Tuples found").get_by_role("listitem")
    query.get_by_label("Template", exact=True).fill('("job", ?int)')
    query.get_by_role("button", name="Read all").click()
    expect(found).to_have_text(['("job", 1)'])
    query.get_by_label("Template", exact=True).fill('("job", ?integer)')
    query.get_by_role("button", name="Read all").click()
    expect(page.locator("#query-error")).to_contain_text('unknown type "integer"')
    expect(found).to_have_count(0)
    expect(page.locator("#query-result")).to_have_text("")

    take = page.locator("#take-form")
    take.get_by_label("Template", exact=True).fill('("job", ?int)')
    take.get_by_role("button", name="Take").click()
    expect(page.locator("#take-result")).to_have_text('Took ("job", 1)')
    take.get_by_label("Template", exact=True).fill('["job", {"$regex": "("}]')
    take.get_by_role("button", name="Take").click()
    expect(page.locator("#take-error")).to_contain_text("400 invalid_template: template[1]")
    expect(page.locator("#take-result")).to_have_text("")

    r = httpx.post(f"{server.url}/spaces/jobs/records/create", json={"path": "a", "fields": {"n": 1}})
    assert r.status_code == 201, r.text
    find = page.locator("#find-form")
    tree = page.get_by_role("list", name="Records found, by path").get_by_role("listitem")
    find.get_by_role("button", name="Find").click()
    expect(tree).to_have_count(1)
    find.get_by_label("Record template", exact=True).fill('{"n": ?number}')
    find.get_by_role("button", name="Find").click()
    expect(page.locator("#find-error")).to_contain_text('unknown type "number"')
    expect(tree).to_have_count(0)
    expect(page.locator("#find-result")).to_have_text("")


def test_a_chosen_space_comes_into_view_and_the_spaces_show_their_records(page: Page, serve: Serve) -> None:
    server = serve(store="memory")
    for path in ("a", "b", "b/c"):
        r = httpx.post(f"{server.url}/spaces/plant/records/create", json={"path": path, "fields": {}})
        assert r.status_code == 201, r.text
    r = httpx.post(f"{server.url}/spaces/plant/write", json={"tuple": ["x"]})
    assert r.status_code == 200, r.text
    page.set_viewport_size({"width": 800, "height": 400})
    page.goto(server.url + "/")
    expect(page.get_by_role("columnheader", name="Records")).to_be_visible()
    expect(figures(page, "plant").nth(6)).to_have_text("3")
    expect(figures(page, "plant").first).to_have_text("1")
    title = page.get_by_role("heading", name="Space plant")
    page.get_by_role("button", name="plant", exact=True).click()
    expect(title).to_be_focused()
    expect(title).to_be_in_viewport()
    r = httpx.post(f"{server.url}/spaces/plant/records/create", json={"path": "d", "fields": {}})
    assert r.status_code == 201, r.text
    expect(figures(page, "plant").nth(6)).to_have_text("4")


def test_records_browse_as_a_tree_whose_address_fields_open_the_contained_record(
    page: Page, serve: Serve
) -> None:
    server = serve(store="memory")
    kitchen = "tuplespace://local/spaces/plant/site/kitchen"
    for path, fields in [
        ("site", {"name": "north"}),
        ("site/kitchen", {"temp": {"$float": "21.5"}}),
        ("site/hall", {"unit": "F"}),
        ("orders/1", {"for": {"$uri": kitchen}, "qty": 2}),
    ]:
        r = httpx.post(f"{server.url}/spaces/plant/records/create", json={"path": path, "fields": fields})
        assert r.status_code == 201, r.text
    page.goto(server.url + "/")
    open_space(page, "plant")
    page.locator("#find-form").get_by_role("button", name="Find").click()
    expect(page.locator("#find-result")).to_have_text("4 records found")
    tree = page.get_by_role("list", name="Records found, by path")
    top = tree.locator("> li")
    expect(top).to_have_count(2)
    expect(top.nth(0)).to_contain_text(re.compile(r"^orders/"))
    expect(top.nth(0).locator("li")).to_have_text(
        [f'1 {{"for": uri"{kitchen}", "qty": 2}} v1, $credit 0, never ends']
    )
    site = top.nth(1)
    site_button = site.get_by_role(
        "button", name="Open record tuplespace://local/spaces/plant/site", exact=True
    )
    expect(site_button).to_have_text("site")
    expect(site.locator("li").get_by_role("button", name=re.compile("^Open record "))).to_have_text(
        ["hall", "kitchen"]
    )

    # The field holding the kitchen's address opens it: the order contains the kitchen.
    top.nth(0).get_by_role("button", name="Open contained record site/kitchen").click()
    expect(page.get_by_role("heading", name=f"Record {kitchen}")).to_be_visible()
    expect(page.locator("#record-fields")).to_have_text('{"temp": 21.5}')
    expect(site.get_by_role("button", name=f"Open record {kitchen}")).to_be_focused()
    screenshot(page, "dashboard-record-tree.png")


def test_a_spaces_rules_are_shown_and_removed_through_the_panel(page: Page, serve: Serve) -> None:
    server = serve(store="memory")
    with ts.connect(server.url + "/spaces/plant") as plant:
        plant.rules.add(
            "hot",
            template=("reading", str, float),
            when="t[2] > 30.0",
            write=[("alarm", "t[1]", "t[2] - 30.0")],
        )
        plant.create("kitchen", {"temp": 21.0})
        plant.create("house", {"comfort": None})
        plant.rules.add("comfort", set="house.comfort", to="k.temp < 23.0", using={"k": "kitchen"})
        plant.rules.add("ratio", template=("pair", int, int), write=[(ts.Lit("ratio"), "t[1] / t[2]")])
        plant.write(("pair", 1, 0))
    page.goto(server.url + "/")
    open_space(page, "plant")
    rules = page.get_by_role("list", name="Rules").locator("> li")
    expect(page.locator("#rules-result")).to_have_text("3 rules")
    expect(rules).to_have_text(
        [
            "comfort level 1, fired 1, failed 0 house.comfort := k.temp < 23.0 (with k = kitchen) Remove",
            'hot level 1, fired 0, failed 0 on write of ("reading", ?str, ?float) when t[2] > 30.0: '
            'write ("alarm", "t[1]", "t[2] - 30.0") Remove',
            'ratio level 1, fired 0, failed 1 on write of ("pair", ?int, ?int): '
            'write ("\'ratio\'", "t[1] / t[2]") last failure: evaluation_error: division by zero Remove',
        ]
    )
    page.get_by_role("button", name="Remove rule hot").click()
    expect(page.locator("#rules-result")).to_have_text("Removed rule hot; 2 rules")
    expect(rules).to_have_count(2)
    with ts.connect(server.url + "/spaces/plant") as plant:
        assert [r.name for r in plant.rules.list()] == ["comfort", "ratio"]
        plant.rules.add("hot", template=("reading", str, float), write=[("alarm", "t[1]")])
    page.get_by_role("button", name="Show rules").click()
    expect(page.locator("#rules-result")).to_have_text("3 rules")
    screenshot(page, "dashboard-rules.png")


def test_the_page_is_labelled_and_works_from_the_keyboard(page: Page, serve: Serve) -> None:
    server = serve(store="memory")
    page.goto(server.url + "/")
    expect(page.get_by_text("No spaces to show")).to_be_visible()

    # Tab reaches the field of a space's name; Enter opens the space and moves there.
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "space-name":
            break
    expect(page.get_by_role("textbox", name="Open space")).to_be_focused()
    page.keyboard.type("jobs")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Space jobs")).to_be_focused()

    # The next stop is the tuple to write; Enter writes it, Shift+Enter starts a new line.
    page.keyboard.press("Tab")
    tuple_field = page.get_by_role("textbox", name="Tuple", exact=True)
    expect(tuple_field).to_be_focused()
    page.keyboard.press("ControlOrMeta+A")
    page.keyboard.type('("job",')
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("7)")
    expect(tuple_field).to_have_value('("job",\n7)')
    page.keyboard.press("Enter")
    expect(page.locator("#write-result")).to_contain_text('Written ("job", 7)')
    expect(tuple_field).to_have_value('("job",\n7)')

    # Every control is named by its label, and each stop shows where the focus is.
    for role, name in [
        ("textbox", "Token"),
        ("button", "Use token"),
        ("textbox", "Tuple"),
        ("spinbutton", "Lease in seconds (empty: forever)"),
        ("button", "Write"),
        ("textbox", "Template"),
        ("button", "Read all"),
        ("button", "Count"),
        ("checkbox", "write"),
        ("checkbox", "First the matching tuples already there (present)"),
        ("button", "Watch"),
        ("log", "Events"),
        ("textbox", "Record template"),
        ("textbox", "Fields"),
        ("textbox", "Path"),
        ("list", "Records found, by path"),
        ("button", "Watch records"),
        ("log", "Record changes"),
        ("img", "No figures yet."),
    ]:
        expect(page.get_by_role(role, name=name, exact=True).first).to_be_attached()
    page.locator("#token").focus()
    stops = 0
    while page.evaluate("document.activeElement.id") != "changes-under":
        page.keyboard.press("Tab")
        focused = page.locator("*:focus")
        expect(focused).to_have_accessible_name(re.compile(r"\S"))
        assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"
        stops += 1
        assert stops < 60, page.evaluate("document.activeElement.outerHTML")
    screenshot(page, "dashboard-keyboard.png")


def test_the_api_documentation_works_from_the_server_alone(page: Page, serve: Serve) -> None:
    server = serve(store="memory")
    page.goto(server.url + "/docs")
    write = page.locator("#operations-default-write")
    expect(write.locator(".opblock-summary-path")).to_have_text("/spaces/{space}/write")
    write.locator(".opblock-summary").click()
    write.get_by_role("button", name="Try it out").click()
    write.get_by_placeholder("space").fill("jobs")
    write.locator("textarea.body-param__text").fill('{"tuple": ["job", 1]}')
    write.get_by_role("button", name="Execute").click()
    expect(write.locator(".live-responses-table tbody .response-col_status")).to_have_text("200")
    screenshot(page, "docs.png")
    count = httpx.post(f"{server.url}/spaces/jobs/count", json={"template": ["job", {"$any": True}]})
    assert count.json() == {"count": 1}
