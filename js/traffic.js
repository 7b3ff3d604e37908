/* Traffic dashboard: fetches the JSON API and draws Highcharts charts, each with a table beside it
   that holds the same numbers in text. No inline script: the page passes settings as data-*. */
(function () {
  "use strict";

  const body = document.body;
  const UNIT_SYSTEM = body.dataset.unitSystem === "iec" ? "iec" : "si";
  const TIME_ZONE = body.dataset.timezone || undefined;
  const INTERVAL_MS = Math.max(1000, Number(body.dataset.intervalS || 5) * 1000);
  const WINDOW_MS = 10 * 60 * 1000;
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

  const LABELS = {
    "5min": { hour: "2-digit", minute: "2-digit" },
    hour: { weekday: "short", hour: "2-digit", minute: "2-digit" },
    day: { weekday: "short", day: "numeric", month: "short" },
    month: { month: "short", year: "numeric" },
    second: { hour: "2-digit", minute: "2-digit", second: "2-digit" },
  };

  function label(ms, resolution) {
    return new Intl.DateTimeFormat(undefined, { timeZone: TIME_ZONE, hourCycle: "h23",
                                                ...LABELS[resolution] })
      .format(new Date(ms));
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

  function baseOptions(type) {
    return {
      chart: { type: type, animation: false, spacing: [8, 4, 8, 4] },
      title: { text: undefined },
      accessibility: { enabled: false },
      credits: { enabled: false },
      legend: { enabled: true },
      plotOptions: { series: { animation: false } },
      time: { timezone: TIME_ZONE },
      xAxis: {
        type: "datetime",
        dateTimeLabelFormats: { second: "%H:%M:%S", minute: "%H:%M", hour: "%H:%M",
                                day: "%e %b", week: "%e %b", month: "%b %Y", year: "%Y" },
      },
      yAxis: {
        title: { text: undefined },
        labels: { formatter: function () { return formatSize(this.value, type === "line"); } },
      },
      tooltip: {
        shared: true,
        pointFormatter: function () {
          return "<span style=\"color:" + this.color + "\">\u25CF</span> " + this.series.name +
            ": <b>" + formatSize(this.y, type === "line") + "</b><br/>";
        },
      },
    };
  }

  /* History: stacked columns per day, hour or month. */
  async function drawSeries(element) {
    const resolution = element.dataset.resolution;
    const query = new URLSearchParams({ resolution: resolution });
    if (element.dataset.start) {
      query.set("start", element.dataset.start);
      query.set("end", element.dataset.end);
    }
    const series = await getJSON("/api/v1/series?" + query.toString());
    const download = series.points.map(function (p) { return [p[0], p[1]]; });
    const upload = series.points.map(function (p) { return [p[0], p[2]]; });
    const options = baseOptions("column");
    options.plotOptions.column = { stacking: "normal", groupPadding: 0.05, pointPadding: 0.05,
                                   borderWidth: 0 };
    options.series = [
      { name: "Download", data: download, color: COLORS.download, legendIndex: 0 },
      { name: "Upload", data: upload, color: COLORS.upload, legendIndex: 1 },
    ];
    options.tooltip.headerFormat = "";
    options.tooltip.pointFormatter = function () {
      return (this.series.index === 0 ? label(this.x, resolution) + "<br/>" : "") +
        this.series.name + ": <b>" + formatSize(this.y) + "</b><br/>";
    };
    Highcharts.chart(element, options);
    fillTable("table-" + resolution, series.points.map(function (p) {
      return [label(p[0], resolution), formatSize(p[1]), formatSize(p[2])];
    }));
  }

  async function refreshSummary() {
    const usage = await getJSON("/api/v1/usage");
    const headline = document.getElementById("headline");
    if (headline && usage.summary) {
      headline.textContent = usage.summary;
    }
    const meter = document.getElementById("used-meter");
    if (meter && usage.limit) {
      meter.value = Math.min(usage.total, usage.limit);
      meter.textContent = usage.percent + "%";
    }
    const figures = { "figure-rx": usage.rx, "figure-tx": usage.tx, "figure-estimate": usage.estimate };
    Object.entries(figures).forEach(function ([id, value]) {
      const element = document.getElementById(id);
      if (element) {
        element.textContent = formatSize(value);
      }
    });
    const today = document.getElementById("figure-today");
    if (today) {
      today.textContent = formatSize(usage.today) +
        (usage.daily_limit ? " of " + formatSize(usage.daily_limit) : "");
    }
  }

  function duration(ms) {
    const minutes = Math.round((ms || 0) / 60000);
    if (minutes < 60) {
      return minutes + " min";
    }
    return Math.floor(minutes / 60) + " h " + (minutes % 60) + " min";
  }

  function describe(event) {
    const d = event.detail || {};
    const command = (d.command || []).join(" ");
    const outcome = d.timed_out ? "timed out" : (d.ok ? "done" : "failed");
    switch (event.kind) {
      case "down": return "The link went down" + (d.reason ? " (" + d.reason + ")" : "") + ".";
      case "up": return "The link came back after " + duration(event.duration_ms) + ".";
      case "attempt": return "Tried to reconnect with " + command + ": " + outcome + ".";
      case "escalation": return "Trying the next way to reconnect (step " + d.step + ").";
      case "lock": return "Resting after " + d.after_fails + " failed attempts, until " +
        label(d.until, "hour") + ".";
      case "unlock": return "Trying again (" + (d.reason || "lock over") + ").";
      case "quota_lock": return "The quota is used up: the link stays down until " +
        label(d.until, "day") + ".";
      case "disconnect": return "Disconnected (" + (d.by || "") + "): " + outcome + ".";
      default: return event.kind;
    }
  }

  async function drawLink() {
    const answer = await getJSON("/api/v1/events?limit=20");
    fillTable("table-uptime", answer.uptime.slice().reverse().map(function (day) {
      return [label(day.day, "day"), day.up_percent.toFixed(1) + " %",
              day.down_ms ? duration(day.down_ms) : "-"];
    }));
    const list = document.getElementById("event-list");
    list.replaceChildren(...answer.events.map(function (event) {
      const item = document.createElement("li");
      const time = document.createElement("time");
      time.dateTime = event.at_iso;
      time.textContent = label(event.at, "hour");
      item.append(time, " " + describe(event));
      return item;
    }));
  }

  function startHistory() {
    const charts = Array.from(document.querySelectorAll(".chart[data-resolution]"));
    const drawAll = function () {
      charts.forEach(function (element) { drawSeries(element).catch(console.error); });
      if (document.getElementById("link")) {
        drawLink().catch(console.error);
      }
    };
    drawAll();
    setInterval(function () { refreshSummary().catch(console.error); }, 60 * 1000);
    setInterval(drawAll, 5 * 60 * 1000);
  }

  /* Realtime: download and upload rate lines that move every poll. */
  function startRealtime() {
    const element = document.getElementById("chart-rt");
    const options = baseOptions("line");
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
        return [label(point.x, "second"), formatSize(point.y, true), formatSize(upload ? upload.y : 0, true)];
      }));
      const last = points[points.length - 1];
      if (last) {
        now.textContent = "Download " + formatSize(last[1], true) + ", upload " +
          formatSize(last[2], true) + " (at " + label(last[0], "second") + ")";
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
        } else if (data.updated === null) {
          now.textContent = "No collector is running, so there is nothing to show yet.";
        }
        const interval = Math.max(1000, (data.interval_s || INTERVAL_MS / 1000) * 1000);
        timer = setTimeout(poll, interval);
      } catch (error) {
        now.textContent = "Cannot reach the box; trying again.";
        timer = setTimeout(poll, INTERVAL_MS * 2);
      }
    }
    document.addEventListener("visibilitychange", function () {
      if (document.hidden) {
        clearTimeout(timer);
      } else {
        poll();
      }
    });
    poll();
  }

  window.traffic = { formatSize: formatSize };
  if (body.dataset.page === "history") {
    startHistory();
  } else if (body.dataset.page === "realtime") {
    startRealtime();
  }
})();
