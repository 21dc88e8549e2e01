export { ProgressBar, formatMetric } from './progress.js';
export type { Metrics, MetricValue, ProgressBarOptions, ProgressStream } from './progress.js';
export { escapeXml, formatTick, lineChart, niceScale, writeChart } from './chart.js';
export type { ChartSeries, LineChartOptions, NiceScale, Point, ReferenceLine } from './chart.js';
export { formatTable } from './table.js';
export type { Align, TableColumn, TableOptions } from './table.js';
export { formatBytes, formatDuration, formatSi } from './units.js';
export { MetricsLog, parseMetricsLog, readMetricsLog } from './metrics-log.js';
export type { MalformedLine, MetricsLogContents, MetricsRecord, ReadMetricsOptions } from './metrics-log.js';
