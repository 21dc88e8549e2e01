// Runs when `node-gyp rebuild` fails during `npm install`: the package stays usable on the
// TypeScript reference backend, and this says how to get the fast one.
process.stderr.write(
  '\nstrata: the native oneDNN addon could not be built; Strata will run on its (slow) TypeScript reference backend.\n' +
    'Possible solutions:\n' +
    '  - bash scripts/setup.sh   (installs libdnnl-dev and build tools, then rebuilds)\n' +
    '  - apt-get install libdnnl-dev build-essential && npx node-gyp rebuild\n\n',
);
