package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// defaultServiceName is service.name when neither OTEL_SERVICE_NAME nor
// OTEL_RESOURCE_ATTRIBUTES names one.
const defaultServiceName = "prechat-processor"

// tracingEnabled reads the standard OpenTelemetry variables: tracing is on
// when OTEL_TRACES_EXPORTER is "otlp", or unset while an OTLP endpoint is
// set (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), and
// OTEL_SDK_DISABLED is not "true". Only the OTLP exporter over
// http/protobuf is built in.
func tracingEnabled(env map[string]string) (bool, error) {
	if strings.EqualFold(env["OTEL_SDK_DISABLED"], "true") {
		return false, nil
	}
	switch exporter := strings.TrimSpace(env["OTEL_TRACES_EXPORTER"]); exporter {
	case "none":
		return false, nil
	case "otlp":
	case "":
		if env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "" && env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] == "" {
			return false, nil
		}
	default:
		return false, fmt.Errorf("OTEL_TRACES_EXPORTER: %q is not supported; use otlp or none", exporter)
	}
	protocol := env["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"]
	if protocol == "" {
		protocol = env["OTEL_EXPORTER_OTLP_PROTOCOL"]
	}
	if protocol != "" && protocol != "http/protobuf" {
		return false, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL: %q is not supported; use http/protobuf (an OTLP collector's port 4318)", protocol)
	}
	return true, nil
}

// startTracing builds the tracer provider the OTEL_* variables of environ
// ask for (tracingEnabled), exporting spans in batches over OTLP/HTTP; nil
// when tracing is off. The exporter and the SDK read the variables this
// does not (OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _COMPRESSION,
// _CERTIFICATE, OTEL_TRACES_SAMPLER, OTEL_BSP_*, OTEL_RESOURCE_ATTRIBUTES)
// from the process environment. stop flushes the spans not yet exported,
// within timeout.
func startTracing(ctx context.Context, environ []string) (_ trace.TracerProvider, stop func(timeout time.Duration) error, _ error) {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "OTEL_") {
			env[k] = v
		}
	}
	nothing := func(time.Duration) error { return nil }
	on, err := tracingEnabled(env)
	if err != nil || !on {
		return nil, nothing, err
	}
	var opts []otlptracehttp.Option
	if u := env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]; u != "" {
		opts = append(opts, otlptracehttp.WithEndpointURL(u))
	} else if u := env["OTEL_EXPORTER_OTLP_ENDPOINT"]; u != "" {
		opts = append(opts, otlptracehttp.WithEndpointURL(strings.TrimSuffix(u, "/")+"/v1/traces"))
	}
	exporter, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, nothing, fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT: %w", err)
	}
	name := defaultServiceName
	if n := env["OTEL_SERVICE_NAME"]; n != "" {
		name = n
	}
	// Later detectors win: OTEL_RESOURCE_ATTRIBUTES may name the service,
	// OTEL_SERVICE_NAME wins over it.
	res, err := resource.New(ctx, resource.WithAttributes(attribute.String("service.name", defaultServiceName)),
		resource.WithTelemetrySDK(), resource.WithFromEnv(), resource.WithAttributes(serviceName(env, name)...))
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, nothing, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	provider := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	return provider, func(timeout time.Duration) error {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		if err := provider.Shutdown(ctx); err != nil {
			return fmt.Errorf("flush traces: %w", err)
		}
		return nil
	}, nil
}

// serviceName is the service.name attribute OTEL_SERVICE_NAME sets, none
// when it is unset (OTEL_RESOURCE_ATTRIBUTES or the default applies).
func serviceName(env map[string]string, name string) []attribute.KeyValue {
	if env["OTEL_SERVICE_NAME"] == "" {
		return nil
	}
	return []attribute.KeyValue{attribute.String("service.name", name)}
}
