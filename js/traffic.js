/* Traffic dashboard: fetches the JSON API and draws Highcharts charts, each with a table beside it
   that holds the same numbers in text. No inline script: the page passes settings as data-*. */
(function () {
  "use strict";

  const body = document.body;
  /* The units come from the page (traffic.units.SIZE_UNITS); formatSize writes a size as
     traffic.units.format_size does, step for step (tests/e2e/test_formats.py checks both). */
  const [SIZE_BASE, ...SIZE_NAMES] = (body.dataset.sizeUnits || "1000 B").split(" ");
  const BASE = Number(SIZE_BASE);
  const TIME_ZONE = body.dataset.timezone || undefined;
  const INTERVAL_MS = Math.max(1000, Number(body.dataset.intervalS || 5) * 1000);
  const WINDOW_MS = 10 * 60 * 1000;
  const HOUR_MS = 3600 * 1000;
  const STALE_POLLS = 3;
  const COLORS = { download: "#2b6cb0", upload: "#dd6b20", rsrp: "#2f855a", sinr: "#805ad5" };
  const FIVE_MIN_MS = 5 * 60 * 1000;

  function formatSize(bytes, perSecond) {
    const size = Number(bytes) || 0;
    let value = Math.abs(size);
    let index = 0;
    let scale = 1;
    let shown = Math.floor(value + 0.5);
    while (shown >= BASE * scale && index < SIZE_NAMES.length - 1) {
      value /= BASE;
      index += 1;
      scale = 10;
      shown = Math.floor(value * scale + 0.5);
    }
    const text = scale === 1 ? String(shown)
      : String(Math.floor(shown / 10)) + (shown % 10 ? "." + (shown % 10) : "");
    return (size < 0 && shown ? "-" : "") + text + " " + SIZE_NAMES[index] +
      (perSecond ? "/s" : "");
  }

  /* Dates and times: every one on the page (tables, sentences, chart axes and tooltips) is
     written by when(), in the household's time zone, the browser's language and 24-hour time. */
  const FORMATS = {
    second: { hour: "2-digit", minute: "2-digit", second: "2-digit" },
    time: { hour: "2-digit", minute: "2-digit" },
    "5min": { hour: "2-digit", minute: "2-digit" },
    hour: { weekday: "short", hour: "2-digit", minute: "2-digit" },
    day: { weekday: "short", day: "numeric", month: "short" },
    date: { day: "numeric", month: "short" },
    datetime: { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" },
    month: { month: "short", year: "numeric" },
    year: { year: "numeric" },
  };
  const formatters = {};

  function when(ms, format) {
    if (!formatters[format]) {
      formatters[format] = new Intl.DateTimeFormat(undefined, {
        timeZone: TIME_ZONE, hourCycle: "h23", ...FORMATS[format] });
    }
    return formatters[format].format(new Date(ms));
  }

  /* A sentence's full stop, unless its last word already ends with one ("30 nov."). */
  function sentence(text) {
    return text.endsWith(".") ? text : text + ".";
  }

  const offsetFormat = new Intl.DateTimeFormat("en-US", { timeZone: TIME_ZONE,
                                                          timeZoneName: "longOffset" });

  function utcOffset(ms) {
    const part = offsetFormat.formatToParts(new Date(ms))
      .find(function (p) { return p.type === "timeZoneName"; });
    return (part ? part.value.replace("GMT", "") : "") || "+00:00";
  }

  /* Labels of bucket starts; one that would repeat (the hour the clocks go back) gets its UTC
     offset, as `traffic report` writes it: "Sun 02:00+02:00", "Sun 02:00+01:00". */
  function bucketLabels(starts, resolution) {
    const labels = starts.map(function (ms) { return when(ms, resolution); });
    const counts = {};
    labels.forEach(function (text) { counts[text] = (counts[text] || 0) + 1; });
    return labels.map(function (text, i) {
      return counts[text] > 1 ? text + utcOffset(starts[i]) : text;
    });
  }

  /* The server writes each <time data-ms> in English; write it as everything else is. */
  function rewriteTime(element) {
    const text = when(Number(element.dataset.ms), element.dataset.format);
    element.textContent = element.hasAttribute("data-stop") ? sentence(text) : text;
  }

  function rewriteTimes() {
    document.querySelectorAll("time[data-ms]").forEach(rewriteTime);
  }

  function setTime(id, ms, format) {
    const element = document.getElementById(id);
    if (element) {
      element.dataset.ms = String(ms);
      element.dataset.format = format;
      element.dateTime = new Date(ms).toISOString();
      rewriteTime(element);
    }
  }

  function duration(ms) {
    const minutes = Math.round((ms || 0) / 60000);
    if (minutes < 60) {
      return minutes + " min";
    }
    return Math.floor(minutes / 60) + " h " + (minutes % 60) + " min";
  }

  /* An age as `traffic status` and the page's first rendering write it: 45s, 12m, 3h 5m. */
  function age(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    if (s < 60) {
      return s + "s";
    }
    if (s < 3600) {
      return Math.floor(s / 60) + "m";
    }
    if (s < 86400) {
      return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
    }
    return Math.floor(s / 86400) + "d " + Math.floor((s % 86400) / 3600) + "h";
  }

  /* With many sites in the store, the page's site (?site=) goes with every API call. */
  const SITE = body.dataset.site || "";

  function withSite(path) {
    if (!SITE) {
      return path;
    }
    const url = new URL(path, window.location.origin);
    url.searchParams.set("site", SITE);
    return url.pathname + url.search;
  }

  async function getJSON(path) {
    const response = await fetch(withSite(path), { headers: { Accept: "application/json" } });
    if (!response.ok) {
      throw new Error(path + ": " + response.status);
    }
    return response.json();
  }

  function fillTable(id, rows) {
    const tbody = document.querySelector("#" + id + " tbody");
    if (!tbody) {
      return;
    }
    tbody.replaceChildren(...rows.map(function (cells) {
      const tr = document.createElement("tr");
      cells.forEach(function (text, i) {
        const cell = document.createElement(i === 0 ? "th" : "td");
        if (i === 0) {
          cell.scope = "row";
        }
        cell.textContent = text;
        tr.appendChild(cell);
      });
      return tr;
    }));
  }

  const AXIS_FORMATS = { millisecond: "second", second: "second", minute: "time", hour: "time",
                         day: "date", week: "date", month: "month", year: "year" };

  const AXIS_UNITS = Object.keys(AXIS_FORMATS);
  /* The finest tick of a chart of buckets: a chart of one month names the month, not 00:00. */
  const BUCKET_UNITS = { "5min": "minute", hour: "hour", day: "day", month: "month" };
  const BUCKET_MS = { "5min": FIVE_MIN_MS, hour: HOUR_MS, day: 24 * HOUR_MS,
                      month: 28 * 24 * HOUR_MS };

  /* Tick labels: by the axis's unit, never finer than `finest`; where an hourly axis reaches
     a new day, the day. */
  function axisLabel(finest) {
    return function () {
      const info = this.axis.tickPositions && this.axis.tickPositions.info;
      let unit = (info && info.unitName) || "second";
      if (finest && AXIS_UNITS.indexOf(unit) < AXIS_UNITS.indexOf(finest)) {
        unit = finest;
      }
      const newDay = this.boundary === "day" && AXIS_FORMATS[unit] === "time";
      return when(this.value, newDay ? "date" : AXIS_FORMATS[unit] || "datetime");
    };
  }

  /* labelOf(x) names a point in the tooltip, as its row in the table. */
  function baseOptions(type, labelOf) {
    const perSecond = type === "line";
    return {
      chart: { type: type, animation: false, spacing: [8, 4, 8, 4] },
      title: { text: undefined },
      accessibility: { enabled: false },
      credits: { enabled: false },
      legend: { enabled: true },
      plotOptions: { series: { animation: false } },
      time: { timezone: TIME_ZONE },
      xAxis: { type: "datetime", labels: { formatter: axisLabel() } },
      yAxis: {
        title: { text: undefined },
        labels: { formatter: function () { return formatSize(this.value, perSecond); } },
      },
      tooltip: {
        shared: true,
        headerFormat: "",
        pointFormatter: function () {
          return (this.series.index === 0 ? labelOf(this.x) + "<br/>" : "") +
            "<span style=\"color:" + this.color + "\">\u25CF</span> " + this.series.name +
            ": <b>" + formatSize(this.y, perSecond) + "</b><br/>";
        },
      },
    };
  }

  /* History: what the server said last (usage), advanced by the browser's clock since. */
  const clock = { now: Number(body.dataset.now) || Date.now(), at: Date.now(),
                  periodStart: Number(body.dataset.periodStart),
                  periodEnd: Number(body.dataset.periodEnd) };

  function serverNow() {
    return clock.now + (Date.now() - clock.at);
  }

  /* The range each chart asks for: the period, the last 48 hours, or the server's default. */
  function range(element) {
    if (element.dataset.resolution === "day") {
      return { start: clock.periodStart, end: clock.periodEnd };
    }
    if (element.dataset.hours) {
      const now = serverNow();
      return { start: now - (Number(element.dataset.hours) - 1) * HOUR_MS, end: now + 1 };
    }
    return null;
  }

  /* History: stacked columns per day, hour or month. Buckets still to come are left empty
     (null), not drawn or listed as 0 B. */
  async function drawSeries(element) {
    const resolution = element.dataset.resolution;
    const query = new URLSearchParams({ resolution: resolution });
    const wanted = range(element);
    if (wanted) {
      query.set("start", String(Math.floor(wanted.start)));
      query.set("end", String(Math.floor(wanted.end)));
    }
    const series = await getJSON("/api/v1/series?" + query.toString());
    element.dataset.start = series.start;
    element.dataset.end = series.end;
    const now = serverNow();
    const measured = series.points.filter(function (p) { return p[0] <= now; });
    const labels = bucketLabels(measured.map(function (p) { return p[0]; }), resolution);
    const labelOf = new Map(measured.map(function (p, i) { return [p[0], labels[i]]; }));
    const column = function (index) {
      return series.points.map(function (p) { return [p[0], p[0] <= now ? p[index] : null]; });
    };
    const options = baseOptions("column", function (x) { return labelOf.get(x) || ""; });
    options.xAxis.labels.formatter = axisLabel(BUCKET_UNITS[resolution]);
    options.xAxis.minTickInterval = BUCKET_MS[resolution];
    options.plotOptions.column = { stacking: "normal", groupPadding: 0.05, pointPadding: 0.05,
                                   borderWidth: 0 };
    options.series = [
      { name: "Download", data: column(1), color: COLORS.download, legendIndex: 0 },
      { name: "Upload", data: column(2), color: COLORS.upload, legendIndex: 1 },
    ];
    Highcharts.chart(element, options);  // in place of the chart drawn there before
    fillTable("table-" + resolution, measured.map(function (p, i) {
      return [labels[i], formatSize(p[1]), formatSize(p[2])];
    }));
  }

  function setText(id, text) {
    const element = document.getElementById(id);
    if (element) {
      element.textContent = text;
    }
  }

  function showUsage(usage) {
    if (usage.summary) {
      setText("headline", usage.summary);
    }
    const meter = document.getElementById("used-meter");
    if (meter && usage.limit) {
      meter.value = Math.min(usage.total, usage.limit);
      meter.textContent = usage.percent + "%";
    }
    setText("figure-rx", usage.rx_text);
    setText("figure-tx", usage.tx_text);
    setText("figure-estimate", usage.estimate_text);
    setText("figure-today", usage.today_text);
    setText("sample-age", usage.sample_age_text);
    const compare = document.getElementById("compare");
    if (compare) {
      compare.replaceChildren(...usage.beside_text.map(function (text) {
        const li = document.createElement("li");
        li.textContent = text;
        return li;
      }));
    }
  }

  /* A source's label at the start of a sentence: "The router", "This box". */
  function subject(label) {
    return /^(this|my|our) /i.test(label) ? label.charAt(0).toUpperCase() + label.slice(1)
      : "The " + label;
  }

  /* The server decides whether the period's first day needs its time (after a reset). */
  function showPeriod(start, end, firstFormat) {
    setTime("period-first", start, firstFormat);
    setTime("period-last", end - 1, "date");
    setTime("figure-estimate-by", end - 1, "date");
  }

  /* The figures, every minute; true when a new day or period began, so the charts' ranges
     have moved. */
  async function refreshSummary() {
    const usage = await getJSON("/api/v1/usage");
    const day = when(clock.now, "date");
    const period = clock.periodStart;
    Object.assign(clock, { now: usage.now, at: Date.now(), periodStart: usage.period_start,
                           periodEnd: usage.period_end });
    showUsage(usage);
    if (usage.period_start !== period) {
      showPeriod(usage.period_start, usage.period_end, usage.period_first_format);
    }
    return usage.period_start !== period || when(usage.now, "date") !== day;
  }

  const UNLOCK_REASONS = { "lock expired": "the rest is over",
                           "new billing period": "a new billing period began",
                           "new day": "a new day began",
                           "link back": "the link is back",
                           "enforce_quota is off": "the quota no longer keeps it down",
                           "traffic connect": "someone asked for it at the box",
                           "sms connect": "someone asked for it by text message",
                           "sms up": "someone asked for it by text message" };

  function commandDetail(d) {
    const command = (d.command || []).join(" ");
    const outcome = d.interrupted ? "interrupted" : d.timed_out ? "timed out"
      : (d.ok ? "done" : "failed" + (d.exit_code !== null && d.exit_code !== undefined
        ? " (exit code " + d.exit_code + ")" : ""));
    return command ? command + ": " + outcome : outcome;
  }

  function tried(d, what) {
    if (d.interrupted) {
      return what + " was cut short.";
    }
    if (d.timed_out) {
      return what + " failed (took too long).";
    }
    return d.ok ? null : what + " failed.";
  }

  function linkFound(event) {
    const d = event.detail || {};
    if (d.first_check) {
      return "The link was " + event.kind + " at the first check.";
    }
    return event.kind === "down" ? "The link went down."
      : "The link came back after " + duration(event.duration_ms) + ".";
  }

  const ALERT_NAMES = { threshold: "quota", daily_limit: "daily limit",
                        early_warning: "early warning", burst: "heavy use",
                        daily_summary: "daily summary", period_summary: "billing period",
                        link_down: "link down", link_up: "link up", new_ip: "new IP address",
                        device: "router", session: "link up on request" };

  /* What the events of one answer say of the alerts: each alert's text by its mark, and the
     marks of those sent somewhere (whose raising the list leaves out: "Sent: ..." says it). */
  function alertContext(events) {
    const texts = {};
    const sent = new Set();
    events.forEach(function (event) {
      const d = event.detail || {};
      if (event.kind === "alert") {
        texts[d.mark] = d.text;
      } else if (event.kind === "alert_sent") {
        sent.add(d.mark);
      }
    });
    return { texts: texts, sent: sent };
  }

  function withoutStop(text) {
    return String(text || "").replace(/[.\s]+$/, "");
  }

  /* An alert, or how one of its messages went, for the family. */
  function describeAlert(event, context) {
    const d = event.detail || {};
    const text = context.texts[d.mark];
    const to = d.url || "alerts.notify[" + d.target + "]";
    switch (event.kind) {
      case "alert": return { text: d.text, detail: !d.quiet ? undefined : d.late
        ? "Not sent: found more than a day after its billing period ended."
        : "Not sent: a higher threshold reached at the same time says more." };
      case "alert_sent": return {
        text: text ? "Sent: " + text : "Sent the " + (ALERT_NAMES[d.rule] || d.rule) + " alert.",
        detail: "to " + to + (d.attempts > 1 ? ", at attempt " + d.attempts : "") };
      case "alert_failed": return {
        text: "Could not send to " + to + ": " + withoutStop(d.error) + " (trying again at " +
          when(d.retry_at, "time") + ").", detail: text };
      case "alert_given_up": return {
        text: "Gave up sending to " + to + " after " + d.attempts + " attempts: " +
          withoutStop(d.error) + ".", detail: text };
      case "alert_unconfirmed": return {
        text: "Not sure the message reached " + to + ": " + withoutStop(d.error) +
          "; it is not sent again.", detail: text };
      default: return { text: event.kind };
    }
  }

  /* An event in a plain sentence for the family, and the detail for the person at the box. */
  function describe(event, context) {
    const d = event.detail || {};
    if (event.kind === "alert" || event.kind.startsWith("alert_")) {
      return describeAlert(event, context);
    }
    switch (event.kind) {
      case "down":
      case "up": return { text: linkFound(event), detail: d.reason };
      case "attempt": return { text: tried(d, "Reconnecting") || "Tried to reconnect.",
                               detail: commandDetail(d), output: d.output };
      case "escalation": return { text: "Trying another way to reconnect.",
                                  detail: "step " + d.step };
      case "lock": return { text: sentence("Resting after " + d.after_fails +
                                           " failed attempts, until " + when(d.until, "hour")) };
      case "unlock": return { text: "Trying to reconnect again: " +
                                (UNLOCK_REASONS[d.reason] || "the rest is over") + ".",
                              detail: d.reason };
      case "quota_lock": return { text: sentence(
        (d.limit === "daily" ? "Today's limit is used up" : "The quota is used up") +
        ": the link stays down until it renews on " + when(d.until, "day")) };
      case "disconnect": return {
        text: tried(d, "Switching the link off") || (d.by === "quota"
          ? "The link was switched off: the quota is used up."
          : String(d.by || "").startsWith("sms")
            ? "The link was switched off as asked by text message."
          : "The link was switched off by hand."),
        detail: d.by + (d.command ? "; " + commandDetail(d) : ""), output: d.output };
      case "stop": return { text: "The box stopped watching the link." };
      case "source_down": return { text: subject(d.label || d.source || "source") +
                                     " stopped answering.", detail: d.error };
      case "source_up": return { text: subject(d.label || d.source || "source") +
                                   " answers again after " + duration(event.duration_ms) + "." };
      default: return describeSms(event);
    }
  }

  /* Commands by text message, their answers and the sessions they start. */
  function describeSms(event) {
    const d = event.detail || {};
    switch (event.kind) {
      case "sms_command": return { text: "A text message asked for " + d.command + ".",
                                   detail: "from " + d.from };
      case "sms_ignored": return { text: "A text message was ignored: " + d.reason + ".",
                                   detail: "from " + d.from +
                                     (d.command ? "; it asked for " + d.command : "") };
      case "sms_answer": return {
        text: d.ok ? "Answered by text message: " + d.text
          : "Could not answer by text message: " + withoutStop(d.error) + ".",
        detail: "to " + d.to + (d.ok ? "" : ": " + d.text) };
      case "session_run": return { text: "The session command ended early; it starts again.",
                                   detail: commandDetail(d), output: d.output };
      case "session_end": return {
        text: d.ok ? "The link asked for by text message is down again (" + d.reason + ")."
          : "The link asked for by text message could not be switched off (" + d.reason + ").",
        detail: "asked by " + d.from + " for " + d.minutes + " min" };
      case "reboot": return {
        text: tried(d, "Rebooting the " + d.target) ||
          "The " + d.target + " was rebooted as asked by text message.",
        detail: commandDetail(d), output: d.output };
      default: return { text: event.kind };
    }
  }

  function eventItem(event, context) {
    const words = describe(event, context);
    const item = document.createElement("li");
    const time = document.createElement("time");
    time.dateTime = event.at_iso;
    time.textContent = when(event.at, "hour");
    const text = document.createElement("span");
    text.className = "event-text";
    text.textContent = words.text;
    item.append(time, " ", text);
    if (words.detail) {
      const detail = document.createElement("small");
      detail.className = "event-detail";
      detail.textContent = words.detail;
      item.append(detail);
    }
    if (words.output) {
      const more = document.createElement("details");
      const summary = document.createElement("summary");
      const output = document.createElement("pre");
      summary.textContent = "What it printed";
      output.textContent = words.output;
      more.append(summary, output);
      item.append(more);
    }
    return item;
  }

  async function drawLink() {
    const answer = await getJSON("/api/v1/events?limit=20");
    fillTable("table-uptime", answer.uptime.slice().reverse().map(function (day) {
      if (day.up_percent === null) {
        return [when(day.day, "day"), "not checked", "\u2014"];
      }
      return [when(day.day, "day"), day.up_percent.toFixed(1) + " %",
              day.down_ms ? duration(day.down_ms) : "-"];
    }));
    const context = alertContext(answer.events);
    document.getElementById("event-list").replaceChildren(...answer.events
      .filter(function (event) {
        return !(event.kind === "alert" && context.sent.has((event.detail || {}).mark));
      })
      .map(function (event) { return eventItem(event, context); }));
  }

  const GAUGES = {
    rsrp: { name: "RSRP", unit: "dBm", color: COLORS.rsrp },
    sinr: { name: "SINR", unit: "dB", color: COLORS.sinr },
    rssi: { name: "RSSI", unit: "dBm", color: COLORS.rsrp },
  };

  /* The gauges a signal is shown by, as traffic.signal.shown_levels picks them: RSRP and SINR,
     else RSSI (all a modem tells). */
  function shownLevels(known) {
    const levels = ["rsrp", "sinr"].filter(known);
    return levels.length ? levels : ["rssi"].filter(known);
  }

  function level(value, unit) {
    return String(Math.round(value * 100) / 100) + " " + unit;
  }

  /* The start of the household's hour holding ms (zones an odd half hour off UTC included). */
  function hourStart(ms) {
    const match = /([+-])(\d\d):(\d\d)/.exec(utcOffset(ms));
    const offset = match ? (match[1] === "-" ? -1 : 1) *
      (Number(match[2]) * 60 + Number(match[3])) * 60000 : 0;
    const local = ms + offset;
    return ms - (((local % HOUR_MS) + HOUR_MS) % HOUR_MS);
  }

  /* A gauge's points as a line that breaks where 5 minutes passed without a reading. */
  function withGaps(points) {
    const data = [];
    points.forEach(function (p, i) {
      if (i > 0 && p[0] - points[i - 1][0] > FIVE_MIN_MS) {
        data.push([points[i - 1][0] + FIVE_MIN_MS, null]);
      }
      data.push([p[0], typeof p[1] === "number" ? p[1] : null]);
    });
    return data;
  }

  /* The router's or the modem's signal over the last 48 hours: one line per gauge, each on its
     own axis, and a table of the means per hour. */
  async function drawSignal(element) {
    const names = element.dataset.gauges.split(" ").filter(function (name) {
      return GAUGES[name];
    });
    const answers = await Promise.all(names.map(function (name) {
      const query = new URLSearchParams({ gauge: name, source: element.dataset.source });
      return getJSON("/api/v1/series?" + query.toString());
    }));
    const options = baseOptions("line", function (x) { return when(x, "hour"); });
    options.xAxis.min = answers[0].start;
    options.xAxis.max = answers[0].end;
    options.yAxis = names.map(function (name, i) {
      const gauge = GAUGES[name];
      return { title: { text: undefined }, opposite: i > 0,
               labels: { formatter: function () { return level(this.value, gauge.unit); } } };
    });
    options.tooltip.pointFormatter = function () {
      const gauge = GAUGES[names[this.series.index]];
      return (this.series.index === 0 ? when(this.x, "hour") + "<br/>" : "") +
        "<span style=\"color:" + this.color + "\">\u25CF</span> " + this.series.name +
        ": <b>" + level(this.y, gauge.unit) + "</b><br/>";
    };
    options.series = answers.map(function (answer, i) {
      const gauge = GAUGES[names[i]];
      return { name: gauge.name + " (" + gauge.unit + ")", data: withGaps(answer.points),
               color: gauge.color, yAxis: i, marker: { enabled: false } };
    });
    Highcharts.chart(element, options);
    const hours = new Map();
    answers.forEach(function (answer, i) {
      answer.points.forEach(function (p) {
        if (typeof p[1] !== "number") {
          return;
        }
        const hour = hourStart(p[0]);
        const sums = hours.get(hour) || names.map(function () { return [0, 0]; });
        sums[i][0] += p[1];
        sums[i][1] += 1;
        hours.set(hour, sums);
      });
    });
    const starts = Array.from(hours.keys()).sort(function (a, b) { return a - b; });
    const labels = bucketLabels(starts, "hour");
    fillTable("table-signal", starts.map(function (hour, row) {
      return [labels[row], ...hours.get(hour).map(function (sum, i) {
        return sum[1] ? (sum[0] / sum[1]).toFixed(1) + " " + GAUGES[names[i]].unit : "\u2014";
      })];
    }));
  }

  function node(tag, className, text) {
    const made = document.createElement(tag);
    if (className) {
      made.className = className;
    }
    if (text !== undefined) {
      made.textContent = text;
    }
    return made;
  }

  /* A source that is not answering, as pages.source_notice writes it. */
  function notice(name, source) {
    const p = node("p", "notice");
    p.dataset.source = name;
    const text = node("span", "notice-text");
    let detail = source.error;
    if (source.state === "refused" && source.type === "modem") {
      text.textContent = subject(source.label) + "'s SIM card refused its PIN: the PIN the box " +
        "has for it is wrong.";
      detail = "Check " + source.setting + "; it is not sent again until the settings change.";
    } else if (source.state === "refused") {
      text.textContent = subject(source.label) + " does not let the box log in: the password " +
        "the box has for it is wrong.";
      detail = "Check " + source.setting + "; no more logins until the settings change.";
    } else {
      const time = node("time");
      time.dateTime = source.failing_since_iso;
      time.textContent = sentence(when(source.failing_since, "datetime"));
      text.append(subject(source.label) + " is not answering since ", time);
    }
    p.append(text);
    if (detail) {
      p.append(" ", node("small", "notice-detail", detail));
    }
    return p;
  }

  /* "RSRP -92 dBm, SINR 14 dB" (a modem's "RSSI -73 dBm"), each level kept on one line. */
  function levels(gauges) {
    const small = node("small", "levels");
    shownLevels(function (name) { return typeof gauges[name] === "number"; })
      .forEach(function (name, i) {
        if (i > 0) {
          small.append(", ");
        }
        small.append(node("span", "level",
                          GAUGES[name].name + " " + level(gauges[name], GAUGES[name].unit)));
      });
    return small;
  }

  const ATTEMPTS_GAUGE = { "pin required": "pin_attempts", "puk required": "puk_attempts" };

  /* "pin required (2 attempts left)", as traffic.sim.sim_words words it. */
  function simWords(gauges) {
    const count = gauges[ATTEMPTS_GAUGE[gauges.sim]];
    if (typeof count !== "number") {
      return gauges.sim;
    }
    return gauges.sim + " (" + count + " attempt" + (count === 1 ? "" : "s") + " left)";
  }

  /* What a router or modem says of the mobile link, as pages.router_panel writes it. */
  function routerPanel(name, source, index) {
    const gauges = source.gauges;
    const items = [["Operator", gauges.operator], ["Network", gauges.network_type]]
      .filter(function (item) { return item[1] !== undefined && item[1] !== ""; });
    if (gauges.connection && gauges.connection !== "connected") {
      items.push(["Connection", gauges.connection]);
    }
    if (gauges.sim && gauges.sim !== "ready") {
      items.push(["SIM", simWords(gauges)]);
    }
    if (gauges.registration && !["home", "roaming"].includes(gauges.registration)) {
      items.push(["Registration", gauges.registration]);
    }
    if (gauges.roaming === "yes") {
      items.push(["Roaming", "yes, on another operator's network"]);
    }
    const section = node("section", "router-panel");
    section.dataset.source = name;
    const heading = node("h2", "", subject(source.label));
    heading.id = "router-heading-" + index;
    section.setAttribute("aria-labelledby", heading.id);
    const list = node("dl", "figures");
    items.forEach(function (item) {
      const div = node("div");
      div.append(node("dt", "", item[0]), node("dd", "", String(item[1])));
      list.append(div);
    });
    if (source.quality) {
      const div = node("div", "signal-figure");
      const dd = node("dd");
      dd.append(node("span", "quality quality-" + source.quality, source.quality), " ",
                levels(gauges));
      div.append(node("dt", "", "Signal"), dd);
      list.append(div);
    }
    section.append(heading, list);
    return section;
  }

  const LINK_GAUGES = ["operator", "network_type", "connection", "registration", "sim", "rsrp",
                       "sinr", "rsrq", "rssi"];

  /* The notices and the router panels, from the collector's latest word on each source. */
  async function refreshSources() {
    const status = await getJSON("/api/v1/status");
    const sources = Object.entries(status.sources || {});
    document.getElementById("notices").replaceChildren(...sources
      .filter(function (entry) { return ["down", "refused"].includes(entry[1].state); })
      .map(function (entry) { return notice(entry[0], entry[1]); }));
    document.getElementById("routers").replaceChildren(...sources
      .filter(function (entry) {
        return entry[1].state === "up" && LINK_GAUGES.some(function (name) {
          return name in entry[1].gauges;
        });
      })
      .map(function (entry, i) { return routerPanel(entry[0], entry[1], i + 1); }));
  }

  function startHistory() {
    rewriteTimes();
    const charts = Array.from(document.querySelectorAll(".chart[data-resolution]"));
    const signal = document.getElementById("chart-signal");
    let first = true;
    const drawAll = function () {
      charts.forEach(function (element) { drawSeries(element).catch(console.error); });
      if (signal) {
        drawSignal(signal).catch(console.error);
      }
      if (document.getElementById("event-list")) {
        drawLink().catch(console.error);
      }
      // The page came with them the first time; a lone counter of the box has nothing to say.
      if (!first && document.querySelector("#routers[data-watch]")) {
        refreshSources().catch(console.error);
      }
      first = false;
    };
    drawAll();
    setInterval(function () {
      refreshSummary().then(function (moved) {
        if (moved) {
          drawAll();
        }
      }).catch(console.error);
    }, 60 * 1000);
    setInterval(drawAll, 5 * 60 * 1000);
  }

  /* Realtime: what to say when no new reading comes. */
  function silence(data, interval) {
    if (data.updated === null || data.updated === undefined) {
      return "No collector is running, so there is nothing to show yet.";
    }
    const now = typeof data.now === "number" ? data.now : Date.now();
    const behind = now - data.updated;
    if (behind > STALE_POLLS * interval) {
      return "The collector has stopped: the last reading was " + age(behind / 1000) + " ago.";
    }
    return null;
  }

  /* Realtime: download and upload rate lines that move every poll. */
  function startRealtime() {
    rewriteTimes();
    const element = document.getElementById("chart-rt");
    const options = baseOptions("line", function (x) { return when(x, "second"); });
    options.series = [
      { name: "Download", data: [], color: COLORS.download, marker: { enabled: false } },
      { name: "Upload", data: [], color: COLORS.upload, marker: { enabled: false } },
    ];
    const chart = Highcharts.chart(element, options);
    const now = document.getElementById("rt-now");
    let since = 0;
    let timer = null;

    function show(points) {
      const latest = chart.series[0].points.slice(-12).reverse();
      fillTable("table-rt", latest.map(function (point, i) {
        const upload = chart.series[1].points[chart.series[1].points.length - 1 - i];
        return [when(point.x, "second"), formatSize(point.y, true),
                formatSize(upload ? upload.y : 0, true)];
      }));
      const last = points[points.length - 1];
      if (last) {
        now.textContent = "Download " + formatSize(last[1], true) + ", upload " +
          formatSize(last[2], true) + " (at " + when(last[0], "second") + ")";
      }
    }

    async function poll() {
      try {
        const data = await getJSON("/api/v1/realtime" + (since ? "?since=" + since : ""));
        const points = data.points || [];
        points.forEach(function (point) {
          const shift = chart.series[0].data.length > 0 &&
            chart.series[0].data[0].x < point[0] - WINDOW_MS;
          chart.series[0].addPoint([point[0], point[1]], false, shift);
          chart.series[1].addPoint([point[0], point[2]], false, shift);
          since = Math.max(since, point[0]);
        });
        if (points.length) {
          chart.redraw();
          show(points);
        }
        const interval = Math.max(1000, (data.interval_s || INTERVAL_MS / 1000) * 1000);
        const message = silence(data, interval);
        if (message) {
          now.textContent = message;
        }
        timer = setTimeout(poll, interval);
      } catch (error) {
        now.textContent = "Cannot reach the box; trying again.";
        timer = setTimeout(poll, INTERVAL_MS * 2);
      }
    }
    document.addEventListener("visibilitychange", function () {
      clearTimeout(timer);
      if (!document.hidden) {
        poll();
      }
    });
    poll();
  }

  /* The site picker shows the chosen site at once; without JavaScript its button does. */
  function startPicker() {
    const select = document.getElementById("site-select");
    if (select) {
      document.documentElement.classList.add("js");
      select.addEventListener("change", function () { select.form.submit(); });
    }
  }

  /* Every site: each one's use against its own limit, every minute. */
  async function refreshSites() {
    const answer = await getJSON("/api/v1/sites");
    answer.sites.forEach(function (site) {
      const line = document.querySelector(".site-line[data-site=\"" + CSS.escape(site.site) +
                                          "\"]");
      if (!line) {
        return;
      }
      const meter = line.querySelector("meter");
      if (meter && site.limit) {
        meter.value = Math.min(site.total, site.limit);
        meter.textContent = site.percent.toFixed(1) + "%";
      }
      line.querySelector(".site-use").textContent = site.limit
        ? site.total_text + " of " + site.limit_text + " used (" + site.percent.toFixed(1) + "%)"
        : site.total_text + " used (no monthly limit)";
      line.querySelector(".site-age").textContent = site.sample_age_text;
    });
  }

  window.traffic = { formatSize: formatSize, age: age, when: when, bucketLabels: bucketLabels,
                     refreshSummary: refreshSummary, refreshSources: refreshSources,
                     refreshSites: refreshSites };
  startPicker();
  if (body.dataset.page === "history") {
    startHistory();
  } else if (body.dataset.page === "realtime") {
    startRealtime();
  } else if (body.dataset.page === "sites") {
    setInterval(function () { refreshSites().catch(console.error); }, 60 * 1000);
  }
})();
