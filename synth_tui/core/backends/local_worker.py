"""The embedded model's process: llama.cpp behind a JSON-lines pipe.

llama.cpp kills its process with a segfault on a grammar it cannot parse, so the model
lives here, in a child process, and the app turns a crash into an error for that run.

Protocol (one JSON object per line): the parent writes
``{"id", "messages", "schema", "max_tokens", "temperature", "top_p", "seed"}`` to stdin
and reads ``{"id", "text", "prompt_tokens", "completion_tokens", "finish_reason"}`` or
``{"id", "error"}`` from the protocol pipe. The first line out is ``{"ready": true}``.

    python -m synth_tui.core.backends.local_worker MODEL.gguf --threads N
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ctx", type=int, default=4096)
    args = ap.parse_args()

    # The protocol gets a private copy of stdout; fd 1 then points at stderr, so that
    # anything llama.cpp prints cannot corrupt the protocol stream.
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    from llama_cpp import Llama, LlamaGrammar

    llm = Llama(model_path=args.model, n_threads=args.threads, n_ctx=args.ctx, verbose=False)
    grammars: dict[str, LlamaGrammar] = {}
    proto.write(json.dumps({"ready": True}) + "\n")

    for line in sys.stdin:
        req = json.loads(line)
        try:
            key = json.dumps(req["schema"], sort_keys=True)
            grammar = grammars.get(key)
            if grammar is None:
                if req.get("grammar") is not None:
                    grammar = LlamaGrammar.from_string(req["grammar"], verbose=False)
                else:
                    grammar = LlamaGrammar.from_json_schema(key, verbose=False)
                grammars[key] = grammar
            out = llm.create_chat_completion(
                messages=req["messages"],
                grammar=grammar,
                max_tokens=req.get("max_tokens") or 512,
                temperature=req.get("temperature") if req.get("temperature") is not None else 0.8,
                top_p=req.get("top_p") if req.get("top_p") is not None else 0.95,
                seed=req.get("seed") if req.get("seed") is not None else -1,
            )
            choice = out["choices"][0]
            usage = out.get("usage") or {}
            reply = {
                "id": req["id"],
                "text": choice["message"]["content"] or "",
                "finish_reason": choice.get("finish_reason"),
                "prompt_tokens": usage.get("prompt_tokens", 0),
                "completion_tokens": usage.get("completion_tokens", 0),
            }
        except Exception as exc:  # a bad request must not end the process
            reply = {"id": req.get("id"), "error": f"{type(exc).__name__}: {exc}"}
        proto.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    main()
