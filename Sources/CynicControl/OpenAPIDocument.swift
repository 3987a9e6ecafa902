/// The API's OpenAPI document, `openapi.yaml` beside this file, embedded in the binary.
enum OpenAPIDocument {
    static let yaml = String(decoding: PackageResources.openapi_yaml, as: UTF8.self)
}
