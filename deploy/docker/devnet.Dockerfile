# syntax=docker/dockerfile:1
# The local chains for docker-compose.yml: anvil (npm @foundry-rs/anvil-linux-amd64, so
# linux/amd64 only), the test tokens compiled with solc-js, and the Tron devnet. Test and
# demo tooling only: never deploy this image anywhere real.
#
#   docker build -f deploy/docker/devnet.Dockerfile -t stablegate/devnet .

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG NODE_IMAGE=node:20-bookworm-slim

# --- node: the pinned anvil and solc, and the contracts compiled once at build time -----
FROM ${NODE_IMAGE} AS node
WORKDIR /repo/devnet
COPY devnet/package.json devnet/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY devnet/compile.mjs ./
COPY devnet/contracts contracts
RUN node compile.mjs

# --- python: the devnet's Python dependencies, from the workspace lock ------------------
FROM ${PYTHON_IMAGE} AS python
RUN pip install --no-cache-dir "uv==0.13.9"
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
COPY pyproject.toml uv.lock ./
COPY libs/common/pyproject.toml libs/common/
COPY services/gateway/pyproject.toml services/gateway/
COPY services/chain-watcher-eth/pyproject.toml services/chain-watcher-eth/
COPY services/chain-watcher-bsc/pyproject.toml services/chain-watcher-bsc/
COPY services/chain-watcher-tron/pyproject.toml services/chain-watcher-tron/
COPY services/reconciler/pyproject.toml services/reconciler/
COPY services/dashboard/pyproject.toml services/dashboard/
COPY services/signer/pyproject.toml services/signer/
# The devnet needs what the shared library needs (web3, eth-abi, httpx, aiohttp, tronpy).
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --package stablegate-common

# --- runtime -----------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 stablegate && \
    useradd --system --uid 10001 --gid stablegate --home-dir /repo --shell /usr/sbin/nologin stablegate
# node runs compile.mjs, which finds the build up to date and returns at once.
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=python /app/.venv /app/.venv
COPY --from=node /repo/devnet /repo/devnet
COPY devnet/devnet.py /repo/devnet/
COPY devnet/tron /repo/devnet/tron
COPY deploy/docker/devnet_node.py /repo/deploy/docker/devnet_node.py
# The shared state volume (token addresses, assets.json) starts owned by the devnet user.
RUN mkdir -p /devnet-state && chown 10001:10001 /devnet-state
ENV PATH=/repo/devnet/node_modules/@foundry-rs/anvil-linux-amd64/bin:/app/.venv/bin:$PATH \
    PYTHONPATH=/repo \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /repo
USER 10001:10001
EXPOSE 8545 8090
# Each Compose service names its role: `anvil …`, or `python deploy/docker/devnet_node.py …`.
CMD ["anvil", "--host", "0.0.0.0", "--port", "8545", "--chain-id", "31337", "--block-time", "2"]
