// Hugging Face's tokenizers (npm package `tokenizers`, Rust core) encoding one text file with a
// tokenizer.json, single-threaded: prints "<MB/s> <tokens>" for bench/bench_tokenize.sh.
// Usage: NODE_PATH=<dir with node_modules> node bench/hf_tokenize.js tokenizer.json text.txt
const fs = require('fs');
const { Tokenizer } = require('tokenizers');

async function main() {
  const [tokenizerPath, textPath] = process.argv.slice(2);
  const tok = Tokenizer.fromFile(tokenizerPath);
  const text = fs.readFileSync(textPath, 'utf8');
  const bytes = Buffer.byteLength(text, 'utf8');
  await tok.encode('warm up');
  let best = Infinity, count = 0;
  for (let run = 0; run < 3; ++run) {
    const t0 = process.hrtime.bigint();
    const enc = await tok.encode(text, null, { addSpecialTokens: false });
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    best = Math.min(best, seconds);
    count = enc.getIds().length;
  }
  console.log(`${(bytes / 1e6 / best).toFixed(2)} ${count}`);
}
main();
