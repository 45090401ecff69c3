export default function Terms() {
  return <p>Terms & Conditions &amp; more — R&D {"x"} a && b</p>;
}
