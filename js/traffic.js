/* Traffic dashboard: fetches the JSON API and draws Highcharts charts, each with a table beside it
   that holds the same numbers in text. No inline script: the page passes settings as data-*. */
(function () {
  "use strict";

  const body = document.body;
  const UNIT_SYSTEM = body.dataset.unitSystem === "iec" ? "iec" : "si";
  const TIME_ZONE = body.dataset.timezone || undefined;
  const INTERVAL_MS = Math.max(1000, Number(body.dataset.intervalS || 5) * 1000);
  const WINDOW_MS = 10 * 60 * 1000;
  const HOUR_MS = 3600 * 1000;
  const STALE_POLLS = 3;
  const COLORS = { download: "#2b6cb0", upload: "#dd6b20" };

  function formatSize(bytes, perSecond) {
    const [base, names] = UNIT_SYSTEM === "iec"
      ? [1024, ["B", "KiB", "MiB", "GiB", "TiB"]]
      : [1000, ["B", "kB", "MB", "GB", "TB"]];
    let value = Number(bytes) || 0;
    let index = 0;
    while (Math.abs(value) >= base && index < names.length - 1) {
      value /= base;
      index += 1;
    }
    const text = index === 0 ? String(Math.round(value)) : value.toFixed(1).replace(/\.0$/, "");
    return text + " " + names[index] + (perSecond ? "/s" : "");
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

  async function getJSON(path) {
    const response = await fetch(path, { headers: { Accept: "application/json" } });
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

  /* A tick's label: by the axis's unit, and where an hourly axis reaches a new day, the day. */
  function axisLabel() {
    const info = this.axis.tickPositions && this.axis.tickPositions.info;
    const unit = (info && info.unitName) || "second";
    const newDay = this.boundary === "day" && AXIS_FORMATS[unit] === "time";
    return when(this.value, newDay ? "date" : AXIS_FORMATS[unit] || "datetime");
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
      xAxis: { type: "datetime", labels: { formatter: axisLabel } },
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
    setText("figure-rx", formatSize(usage.rx));
    setText("figure-tx", formatSize(usage.tx));
    setText("figure-estimate", formatSize(usage.estimate));
    setText("figure-today", formatSize(usage.today) +
      (usage.daily_limit ? " of " + formatSize(usage.daily_limit) : ""));
    setText("sample-age", usage.sample_age_s === null
      ? "No reading yet: is the collector running?"
      : "Last reading " + age(usage.sample_age_s) + " ago.");
  }

  function showPeriod(start, end) {
    const startsAtMidnight = when(start, "time") === "00:00";
    setTime("period-first", start, startsAtMidnight ? "date" : "datetime");
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
      showPeriod(usage.period_start, usage.period_end);
    }
    return usage.period_start !== period || when(usage.now, "date") !== day;
  }

  const UNLOCK_REASONS = { "lock expired": "the rest is over",
                           "new billing period": "a new billing period began",
                           "new day": "a new day began",
                           "link back": "the link is back",
                           "enforce_quota is off": "the quota no longer keeps it down",
                           "traffic connect": "someone asked for it at the box" };

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

  /* An event in a plain sentence for the family, and the detail for the person at the box. */
  function describe(event) {
    const d = event.detail || {};
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
          : "The link was switched off by hand."),
        detail: d.by + (d.command ? "; " + commandDetail(d) : ""), output: d.output };
      case "stop": return { text: "The box stopped watching the link." };
      default: return { text: event.kind };
    }
  }

  function eventItem(event) {
    const words = describe(event);
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
    document.getElementById("event-list").replaceChildren(...answer.events.map(eventItem));
  }

  function startHistory() {
    rewriteTimes();
    const charts = Array.from(document.querySelectorAll(".chart[data-resolution]"));
    const drawAll = function () {
      charts.forEach(function (element) { drawSeries(element).catch(console.error); });
      if (document.getElementById("link")) {
        drawLink().catch(console.error);
      }
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

  window.traffic = { formatSize: formatSize, when: when, bucketLabels: bucketLabels };
  if (body.dataset.page === "history") {
    startHistory();
  } else if (body.dataset.page === "realtime") {
    startRealtime();
  }
})();
