//go:build tools

// Package lbc pins the AWS Load Balancer Controller's module so that `go build
// sigs.k8s.io/aws-load-balancer-controller` builds its main package with the versions in this go.sum.
package lbc

import _ "sigs.k8s.io/aws-load-balancer-controller"
