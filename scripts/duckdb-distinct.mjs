// duckdb-distinct.mjs FILE COLS: DuckDB count(DISTINCT col) over a CSV, for
// scripts/bench-count.sh (DuckDB parses no variants and normalises nothing).
import { DuckDBInstance } from '@duckdb/node-api';
const [file, cols] = [process.argv[2], process.argv[3].split(',')];
const inst = await DuckDBInstance.create(':memory:', { threads: '2' });
const con = await inst.connect();
const t0 = performance.now();
const q = `SELECT ${cols.map(c => `count(DISTINCT "${c}")`).join(', ')} FROM read_csv('${file}', header=true, all_varchar=true)`;
const r = await con.runAndReadAll(q);
console.log(JSON.stringify(r.getRows().map(x => x.map(Number))), ((performance.now() - t0) / 1000).toFixed(2) + ' s');
