# The alb-rollout CLI as a container (for Argo Rollouts analysis Jobs and any CI): the esbuild bundle only,
# no node_modules. Build after `npm run bundle`:  docker build -t alb-rollout .
FROM node:20-slim

WORKDIR /app
ENV NODE_ENV=production
# package.json gives "type": "module" (the bundle is ESM) and the version.
COPY package.json ./
COPY dist/cli.js ./dist/cli.js

# The image's `node` user, by number so that Kubernetes can verify runAsNonRoot.
USER 1000:1000
ENTRYPOINT ["node", "/app/dist/cli.js"]
