"""/docs in a real browser: headless Chromium (Debian's chromium and chromium-driver) driven by Selenium.

Usage: docs-browser.py BASE_URL ADMIN_PASSWORD
Checks that the page lists every operation of the served openapi.json, that the "Try it" form of
POST /authentication/token logs in (the page puts the access token into its token field), and that the form of
GET /node then gets the same answer as the API gives that token directly. Exits non-zero with a reason otherwise.
"""
import json
import sys
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

base, password = sys.argv[1].rstrip("/"), sys.argv[2]


def fail(reason):
    print("docs page: " + reason, file=sys.stderr)
    sys.exit(1)


document = json.load(urllib.request.urlopen(base + "/openapi.json", timeout=10))
expected = sorted((method.upper(), path) for path, ops in document["paths"].items() for method in ops)

options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,2000"):
    options.add_argument(flag)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
try:
    driver.set_page_load_timeout(30)
    driver.get(base + "/docs")
    wait = WebDriverWait(driver, 20)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "details.op")) > 0)

    listed = sorted(
        (op.find_element(By.CSS_SELECTOR, "summary .m").text.strip(), op.find_element(By.CSS_SELECTOR, "summary .path").text.strip())
        for op in driver.find_elements(By.CSS_SELECTOR, "details.op"))
    if listed != expected:
        fail("operations listed differ from openapi.json: missing %s, extra %s"
             % (sorted(set(expected) - set(listed)), sorted(set(listed) - set(expected))))
    print("docs page lists all %d operations" % len(listed))

    def operation(method, path):
        for op in driver.find_elements(By.CSS_SELECTOR, "details.op"):
            summary = op.find_element(By.CSS_SELECTOR, "summary")
            if summary.find_element(By.CSS_SELECTOR, ".m").text.strip() == method and \
                    summary.find_element(By.CSS_SELECTOR, ".path").text.strip() == path:
                summary.click()  # opens the operation
                return op
        fail("no operation %s %s on the page" % (method, path))

    def send(op):
        op.find_element(By.CSS_SELECTOR, "button").click()
        out = op.find_element(By.CSS_SELECTOR, "pre")
        wait.until(lambda d: out.text.strip() not in ("", "…"))
        return out.text

    login = operation("POST", "/authentication/token")
    area = login.find_element(By.CSS_SELECTOR, "textarea")
    area.clear()
    area.send_keys(json.dumps({"username": "administrator", "password": password}))
    answer = send(login)
    if not answer.startswith("200"):
        fail("logging in through the form answered: " + answer[:300])
    token = driver.find_element(By.ID, "token").get_attribute("value")
    if not token or token.count(".") != 2:
        fail("the form did not put the access token into the token field: %r" % token)

    nodes = operation("GET", "/node")
    answer = send(nodes)
    status, _, body = answer.partition("\n\n")
    if not status.startswith("200"):
        fail("GET /node through the form answered: " + answer[:300])
    request = urllib.request.Request(base + "/node", headers={"Authorization": "Bearer " + token})
    direct = json.load(urllib.request.urlopen(request, timeout=10))
    if json.loads(body) != direct:
        fail("GET /node through the form differs from the API's answer: %s vs %s" % (body[:200], json.dumps(direct)[:200]))
    print("docs page: the Try-it forms logged in and got GET /node's answer (%d nodes)" % len(direct))
finally:
    driver.quit()
