import { Command } from 'commander';
import { formatBytes } from '../../report/index.js';
import {
  checkServerOptions,
  ensureClientBundle,
  listModels,
  startServer,
  type StrataServer,
  type StrataServerOptions,
} from '../../runtime/server.js';
import { println, processIo, type CliIo } from '../io.js';
import { parseInteger, parseNumber } from '../parse.js';

export interface ServeFlags {
  port: number;
  host: string;
  throttleKbps?: number;
  quiet?: boolean;
}

/** Builds the client if needed, starts the server and prints where it is and what it serves. */
export async function serveModels(
  dir: string,
  flags: ServeFlags,
  io: CliIo = processIo,
  webRoot?: string,
): Promise<StrataServer> {
  if (flags.throttleKbps !== undefined && !(flags.throttleKbps > 0)) {
    throw new RangeError(`Expected --throttle-kbps in (0, inf) but received ${flags.throttleKbps}`);
  }
  const options: StrataServerOptions = {
    root: dir,
    port: flags.port,
    host: flags.host,
    ...(webRoot !== undefined ? { webRoot } : {}),
    ...(flags.throttleKbps !== undefined ? { throttleKbps: flags.throttleKbps } : {}),
    ...(flags.quiet ? {} : { log: (line: string) => println(io.err, line) }),
  };
  // Arguments first: a mistyped folder must not (re)build and write the bundle into the package.
  await checkServerOptions(options);
  await ensureClientBundle(webRoot, (message) => println(io.err, `warning: ${message}`));
  const server = await startServer(options);
  const models = await listModels(dir);
  const write = (line = '') => println(io.out, line);
  write(`serving ${dir} at ${server.url}/`);
  if (flags.throttleKbps !== undefined) write(`model files throttled to ${flags.throttleKbps} kbit/s`);
  if (models.length === 0) write('no .strata files in this folder yet');
  for (const m of models) {
    const detail =
      m.error !== undefined
        ? `unreadable: ${m.error}`
        : `${formatBytes(m.size)}, ${m.precisions!.map((p) => `w${p.bits}@${p.completeAt}`).join(' ')}`;
    write(`  ${server.url}/?model=${encodeURIComponent(m.name)}  (${detail})`);
  }
  return server;
}

export function serveCommand(io: CliIo = processIo): Command {
  return new Command('serve')
    .description(
      'Serve a folder of .strata files over HTTP (with byte ranges) and a page that classifies with each ' +
        'precision as the file downloads',
    )
    .argument('[dir]', 'the folder holding the model files', '.')
    .option('--port <n>', 'port to listen on (0: any free port)', parseInteger(0), 8080)
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option(
      '--throttle-kbps <n>',
      'simulate a slow link for the model files (kilobits per second)',
      parseNumber,
    )
    .option('--quiet', 'do not log requests')
    .action(async (dir: string, flags: ServeFlags) => {
      const server = await serveModels(dir, flags, io);
      println(io.out, 'press Ctrl+C to stop');
      await new Promise<void>((done) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          void server.close().then(done);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
    });
}
