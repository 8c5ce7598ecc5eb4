//go:build tools

// Package argo pins the Argo Rollouts module so that `go build
// github.com/argoproj/argo-rollouts/cmd/rollouts-controller` builds its controller with the versions in this go.sum.
package argo

import _ "github.com/argoproj/argo-rollouts/cmd/rollouts-controller"
