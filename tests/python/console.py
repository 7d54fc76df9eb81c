"""Drives the runnel console in headless Chromium (Debian's chromium and chromedriver).

Usage: console.py URL TOKEN SQL_DIR SCREENSHOT_DIR

SQL_DIR holds job.sql (the bids source and the hot-items sink `hot`) and explain.sql.

Checks the token prompt (none, wrong, right), submits SQL through the editor (an error
first, which must show its line and column, then the hot-items job and an EXPLAIN),
follows the job on the jobs page, the graph (non-zero rates on every node), the
checkpoint history and the live results (the chart must change as epochs commit), the
tables page, and stops the job with the confirm dialog. A screenshot of every page goes
to SCREENSHOT_DIR. Exits non-zero with a screenshot of the failure when a check fails.
"""

import json
import os
import sys
import time

from browser import browser, css, login, visible, wait

URL, TOKEN, SQL_DIR, SHOTS = sys.argv[1:5]
# A parse error on line 3: the keyword SELECT is misspelt.
BAD_SQL = "SHOW SOURCES;\nSHOW JOBS;\nCREATE SINK oops AS SELEC auction FROM bids;\n"


def shot(driver, name):
    path = os.path.join(SHOTS, f"{name}.png")
    driver.save_screenshot(path)
    print(f"screenshot {path}", flush=True)


def type_sql(driver, text):
    editor = css(driver, "#sql-editor")[0]
    driver.execute_script("arguments[0].value = ''", editor)
    editor.send_keys(text)
    css(driver, "#sql-run")[0].click()


def token_prompt(driver):
    driver.get(URL)
    wait(driver, "the token prompt shows", lambda: visible(driver, "#login"))
    assert not css(driver, "#view *"), "data shown without a token"
    assert not css(driver, "tr[data-job]"), "jobs shown without a token"
    shot(driver, "01-token-prompt")
    login(driver, "not-the-token")
    error = wait(driver, "a wrong token is refused", lambda: visible(driver, "#login-error"))
    assert "invalid bearer token" in error.text, error.text
    assert not css(driver, "#view *"), "data shown with a wrong token"
    shot(driver, "02-wrong-token")
    login(driver, TOKEN)
    wait(driver, "the jobs page shows", lambda: visible(driver, "#jobs") and not visible(driver, "#login"))


def sql_editor(driver):
    css(driver, "a[data-nav=sql]")[0].click()
    wait(driver, "the editor shows", lambda: visible(driver, "#sql-editor"))
    type_sql(driver, BAD_SQL)
    box = wait(driver, "the SQL error shows", lambda: visible(driver, "#sql-error"))
    line, column = box.get_attribute("data-line"), box.get_attribute("data-column")
    assert line == "3", f"error on line {line!r}: {box.text}"
    assert int(column) > 0, box.text
    assert f"Line 3, column {column}" in box.text, box.text
    assert f"line 3, column {column}" in box.text, box.text
    marked = css(driver, ".gutter .error-line")
    assert [m.get_attribute("data-line") for m in marked] == ["3"], "gutter mark"
    assert "^" in css(driver, "#sql-error .excerpt")[0].text
    shot(driver, "03-sql-error")

    with open(os.path.join(SQL_DIR, "job.sql")) as f:
        type_sql(driver, f.read())
    wait(driver, "the job is created", lambda: any(
        "job hot started" in p.text for p in css(driver, "#sql-results .ok")))
    assert not visible(driver, "#sql-error")
    shot(driver, "04-sql-submitted")

    with open(os.path.join(SQL_DIR, "explain.sql")) as f:
        type_sql(driver, f.read())
    plan = wait(driver, "the plan shows", lambda: visible(driver, "#sql-plan"))
    assert "source bids" in plan.text and "top_k" in plan.text, plan.text
    shot(driver, "05-sql-explain")


def jobs_page(driver):
    css(driver, "a[data-nav=jobs]")[0].click()
    wait(driver, "job hot is running", lambda: css(driver, "tr[data-job=hot][data-state=running]"))
    shot(driver, "06-jobs")


def node_rates(driver):
    nodes = css(driver, "#job-graph g.node")
    rates = {n.get_attribute("data-node"): n.get_attribute("data-rows-in-per-second") for n in nodes}
    return rates if rates and all(r and float(r) > 0 for r in rates.values()) else None


def job_pages(driver):
    driver.get(f"{URL}/#/jobs/hot/graph")
    rates = wait(driver, "every node of the graph shows a non-zero rate", lambda: node_rates(driver))
    print("rows in per second by node:", json.dumps(rates), flush=True)
    assert len(rates) >= 4, rates
    roles = {n.get_attribute("data-role") for n in css(driver, "#job-graph g.node")}
    assert {"source", "operator", "sink"} <= roles, roles
    assert css(driver, "#job-graph g.edge"), "no edges drawn"
    shot(driver, "07-graph")

    css(driver, "nav.tabs a[href$='/checkpoints']")[0].click()
    wait(driver, "a completed checkpoint is listed",
         lambda: css(driver, "#checkpoints tr[data-status=completed]"))
    shot(driver, "08-checkpoints")

    css(driver, "nav.tabs a[href$='/results']")[0].click()
    chart = lambda: css(driver, "#live-chart")[0]
    first = int(wait(driver, "the live chart shows an epoch", lambda: chart().get_attribute("data-epoch")))
    wait(driver, "ranked bars of a window show", lambda: css(driver, "#window-charts g[data-label]"))
    drawn = css(driver, "#live-chart")[0].text
    later = int(wait(driver, "the live chart moves to a newer epoch",
                     lambda: int(chart().get_attribute("data-epoch") or 0) > first and chart().get_attribute("data-epoch")))
    assert css(driver, "#live-chart")[0].text != drawn, "the chart did not change"
    print(f"live chart: epoch {first} -> {later}", flush=True)
    shot(driver, "09-results")


def tables_page(driver):
    css(driver, "a[data-nav=tables]")[0].click()
    link = wait(driver, "table hot_items is listed", lambda: css(driver, "tr[data-table=hot_items] a"))
    shot(driver, "10-tables")
    link[0].click()
    wait(driver, "its snapshots are listed", lambda: css(driver, "tr[data-snapshot]"))
    shot(driver, "11-table-snapshots")


def stop_job(driver):
    css(driver, "a[data-nav=jobs]")[0].click()
    button = wait(driver, "the stop button shows", lambda: css(driver, "button[data-stop=hot]"))
    button[0].click()
    alert = wait(driver, "the confirm dialog opens", lambda: driver.switch_to.alert)
    assert "Stop job hot?" in alert.text, alert.text
    alert.accept()
    wait(driver, "job hot is dropped", lambda: css(driver, "tr[data-job=hot][data-state=dropped]"))
    shot(driver, "12-stopped")


def main():
    os.makedirs(SHOTS, exist_ok=True)
    driver = browser()
    try:
        token_prompt(driver)
        sql_editor(driver)
        jobs_page(driver)
        job_pages(driver)
        tables_page(driver)
        stop_job(driver)
        # A new tab session without the token: the prompt again, and no data.
        driver.execute_script("sessionStorage.clear()")
        driver.get(f"{URL}/#/jobs")
        driver.refresh()
        wait(driver, "the token prompt shows again", lambda: visible(driver, "#login"))
        time.sleep(1.5)
        assert not css(driver, "tr[data-job]"), "jobs shown without a token"
    except BaseException:
        shot(driver, "failure")
        raise
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
